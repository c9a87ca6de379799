#pragma once
/// A record accepted by the pipeline (spec §4 step 3-6): its metadata and the decoded, transformed
/// message. Owned by whoever called pipeline::process; moved into dispatchers' work. Not shared.
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "wire/payload.hpp"

namespace ts::pipeline {

/// The position of each record message type in Message (0 = no message).
template <class M>
inline constexpr std::size_t kMessageIndex = 0;
template <>
inline constexpr std::size_t kMessageIndex<wire::vehicle_data::Payload> = 1;
template <>
inline constexpr std::size_t kMessageIndex<wire::vehicle_alerts::VehicleAlerts> = 2;
template <>
inline constexpr std::size_t kMessageIndex<wire::vehicle_error::VehicleErrors> = 3;
template <>
inline constexpr std::size_t kMessageIndex<wire::vehicle_connectivity::VehicleConnectivity> = 4;

/// A record's decoded protobuf message (spec §7.1): one of the four record messages, or none for
/// record types without a schema. The message and all its parts (datums, values, strings) live on a
/// protobuf Arena owned by this object, allocated together with the arena's first block: decoding
/// a typical record makes one heap allocation instead of one per datum, value and string, and
/// freeing it is one `free`. Copies are deep (a new arena). A plain value: one owner, any thread.
class Message {
 public:
  Message() noexcept;
  ~Message();
  Message(Message&& other) noexcept;
  Message& operator=(Message&& other) noexcept;
  Message(const Message& other);
  Message& operator=(const Message& other);

  /// Replaces the content with a copy of `message` (records built in code: tests, connectivity).
  template <class M>
    requires(kMessageIndex<M> != 0)
  Message& operator=(const M& message) {
    emplace<M>().CopyFrom(message);
    return *this;
  }

  /// Replaces the content with an empty M on a fresh arena and returns it, to be filled in.
  template <class M>
    requires(kMessageIndex<M> != 0)
  M& emplace() {
    return *static_cast<M*>(emplace_index(kMessageIndex<M>));
  }

  /// The message if it is an M, else null.
  template <class M>
    requires(kMessageIndex<M> != 0)
  const M* get_if() const {
    return index_ == kMessageIndex<M> ? static_cast<const M*>(message_) : nullptr;
  }
  template <class M>
    requires(kMessageIndex<M> != 0)
  M* get_if() {
    return index_ == kMessageIndex<M> ? static_cast<M*>(message_) : nullptr;
  }

  /// The message, or null when there is none.
  const google::protobuf::Message* get() const { return message_; }

  /// kMessageIndex of the message's type; 0 when there is none.
  std::size_t index() const { return index_; }

  /// Drops the message (and its arena).
  void reset() noexcept;

 private:
  struct Storage;  // the arena and its first block: one allocation
  static std::vector<std::unique_ptr<Storage>>* pool();  // this thread's idle arenas
  static std::unique_ptr<Storage> acquire_storage();
  static void release_storage(std::unique_ptr<Storage> storage) noexcept;
  google::protobuf::Message* emplace_index(std::size_t index);

  std::unique_ptr<Storage> storage_;
  google::protobuf::Message* message_ = nullptr;  // on storage_->arena
  std::size_t index_ = 0;
};

struct Record {
  wire::RecordType type = wire::RecordType::Other;
  std::string tx_type;  ///< envelope topic (spec: TxType); "" for unknown-type acks
  std::string txid;
  std::string vin;                  ///< certificate DeviceID, never from the payload
  std::string device_client_version;
  std::string socket_id;
  std::int64_t received_at_ms = 0;
  Message message;
  std::string opaque_payload;  ///< payload bytes of record types without a schema

  /// spec §7.1 SignalsCount: datums for V, alerts for alerts, 0 otherwise.
  int signals_count() const;

  /// The decoded message, or null for record types without a schema.
  const google::protobuf::Message* typed() const { return message.get(); }

  /// The bytes dispatchers that forward payloads receive (spec §7.1): the re-encoded protobuf
  /// for typed records (unknown fields kept), the opaque bytes otherwise.
  std::string encoded_payload() const;
};

}  // namespace ts::pipeline
