#include "pipeline/record.hpp"

#include <google/protobuf/arena.h>

#include <utility>
#include <vector>

namespace ts::pipeline {
namespace {

namespace vd = wire::vehicle_data;
namespace va = wire::vehicle_alerts;
namespace ve = wire::vehicle_error;
namespace vc = wire::vehicle_connectivity;

// The arena's first block: the 20-datum benchmark record needs 2.0 KiB of it; bigger records
// continue in blocks the arena allocates as needed (256 bytes doubling up to 8 KiB).
constexpr std::size_t kFirstBlockBytes = 3 * 1024;

// Idle arenas kept per thread (each ~3.2 KiB).
constexpr std::size_t kPooledPerThread = 4;

}  // namespace

struct Message::Storage {
  alignas(std::max_align_t) char first_block[kFirstBlockBytes];
  google::protobuf::Arena arena;  // declared after its block: destroyed before it

  Storage() : arena(options(first_block)) {}

  static google::protobuf::ArenaOptions options(char* block) {
    google::protobuf::ArenaOptions o;
    o.initial_block = block;
    o.initial_block_size = kFirstBlockBytes;
    return o;
  }
};

// Arenas are reused: a record's arena goes back to a small pool of the thread that destroys the
// record (normally the shard that made it), so a steady stream of records allocates none.
std::vector<std::unique_ptr<Message::Storage>>* Message::pool() {
  // Null once this thread's pool is gone (thread exit): a message destroyed later, e.g. by a
  // static's destructor, frees its arena instead.
  thread_local bool gone = false;
  if (gone) return nullptr;
  struct Pool {
    std::vector<std::unique_ptr<Storage>> idle;
    Pool() { idle.reserve(kPooledPerThread); }  // release_storage never allocates
    ~Pool() { gone = true; }
  };
  thread_local Pool pool;
  return &pool.idle;
}

std::unique_ptr<Message::Storage> Message::acquire_storage() {
  auto* idle = pool();
  if (idle == nullptr || idle->empty()) return std::make_unique<Storage>();
  auto storage = std::move(idle->back());
  idle->pop_back();
  return storage;
}

void Message::release_storage(std::unique_ptr<Storage> storage) noexcept {
  if (!storage) return;
  storage->arena.Reset();  // destroys the message; keeps the first block only
  auto* idle = pool();
  if (idle != nullptr && idle->size() < kPooledPerThread) idle->push_back(std::move(storage));
}

Message::Message() noexcept = default;
Message::~Message() { release_storage(std::move(storage_)); }
Message::Message(Message&& other) noexcept
    : storage_(std::move(other.storage_)),
      message_(std::exchange(other.message_, nullptr)),
      index_(std::exchange(other.index_, 0)) {}

Message& Message::operator=(Message&& other) noexcept {
  if (this != &other) {
    release_storage(std::exchange(storage_, std::move(other.storage_)));
    message_ = std::exchange(other.message_, nullptr);
    index_ = std::exchange(other.index_, 0);
  }
  return *this;
}

Message::Message(const Message& other) { *this = other; }

Message& Message::operator=(const Message& other) {
  if (this == &other) return *this;
  if (other.message_ == nullptr) {
    reset();
  } else {
    emplace_index(other.index_)->CopyFrom(*other.message_);
  }
  return *this;
}

void Message::reset() noexcept {
  release_storage(std::move(storage_));
  message_ = nullptr;
  index_ = 0;
}

google::protobuf::Message* Message::emplace_index(std::size_t index) {
  // The old message goes with the arena's content; Reset() keeps only the first block.
  if (storage_) {
    storage_->arena.Reset();
  } else {
    storage_ = acquire_storage();
  }
  auto* arena = &storage_->arena;
  switch (index) {
    case kMessageIndex<vd::Payload>:
      message_ = google::protobuf::Arena::CreateMessage<vd::Payload>(arena);
      break;
    case kMessageIndex<va::VehicleAlerts>:
      message_ = google::protobuf::Arena::CreateMessage<va::VehicleAlerts>(arena);
      break;
    case kMessageIndex<ve::VehicleErrors>:
      message_ = google::protobuf::Arena::CreateMessage<ve::VehicleErrors>(arena);
      break;
    case kMessageIndex<vc::VehicleConnectivity>:
      message_ = google::protobuf::Arena::CreateMessage<vc::VehicleConnectivity>(arena);
      break;
    default:
      reset();
      return nullptr;
  }
  index_ = index;
  return message_;
}

int Record::signals_count() const {
  if (const auto* p = message.get_if<vd::Payload>()) return p->data_size();
  if (const auto* a = message.get_if<va::VehicleAlerts>()) return a->alerts_size();
  return 0;
}

std::string Record::encoded_payload() const {
  if (const auto* m = typed()) return m->SerializeAsString();
  return opaque_payload;
}

}  // namespace ts::pipeline
