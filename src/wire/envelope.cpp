#include "wire/envelope.hpp"

#include <flatbuffers/flatbuffers.h>

#include "schema/envelope_generated.h"

namespace ts::wire {
namespace {

using Env = tesla::FlatbuffersEnvelope;
using Stream = tesla::FlatbuffersStream;

std::string_view view(const flatbuffers::Vector<std::uint8_t>* v) {
  if (v == nullptr) return {};
  return {reinterpret_cast<const char*>(v->data()), v->size()};
}

flatbuffers::Offset<flatbuffers::String> str(flatbuffers::FlatBufferBuilder& b,
                                             std::string_view s) {
  // spec §3.4: [ubyte] fields are written with the builder's *string* routine (NUL-terminated).
  return b.CreateString(s.data(), s.size());
}

// spec §3.4 "ACK recipe"/"ERROR recipe" step 3-4: the envelope table, fields added in the
// reference's order so that vtable and layout are byte-identical.
Bytes finish_envelope(flatbuffers::FlatBufferBuilder& b, std::string_view txid,
                      std::string_view topic, std::string_view message_id, std::uint8_t type,
                      flatbuffers::Offset<void> message) {
  auto t = str(b, txid);
  auto p = str(b, topic);
  auto m = str(b, message_id);
  auto start = b.StartTable();
  b.AddOffset(Env::VT_TXID, t);
  b.AddOffset(Env::VT_TOPIC, p);
  b.AddElement<std::uint8_t>(Env::VT_MESSAGE_TYPE, type, 0);
  b.AddOffset(Env::VT_MESSAGE, message);
  b.AddOffset(Env::VT_MESSAGE_ID, m);
  auto env = b.EndTable(start);
  b.Finish(flatbuffers::Offset<Env>(env));
  return Bytes(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
}

}  // namespace

std::optional<EnvelopeView> decode_envelope(std::span<const std::uint8_t> frame) {
  // The reference reads without a verifier and turns an out-of-range read into an error; we
  // verify first (spec §3.2), field by field, so that an unreadable union value can still be told
  // apart from an unreadable envelope.
  if (frame.size() < sizeof(flatbuffers::uoffset_t)) return std::nullopt;
  flatbuffers::Verifier v(frame.data(), frame.size());
  if (!v.VerifyOffset(0)) return std::nullopt;
  const Env* env = flatbuffers::GetRoot<Env>(frame.data());
  // The generated tables hide their Table base; verify through a plain Table view of the root.
  const auto* t = flatbuffers::GetRoot<flatbuffers::Table>(frame.data());
  bool ok = t->VerifyTableStart(v) && t->VerifyOffset(v, Env::VT_TXID) &&
            v.VerifyVector(env->txid()) && t->VerifyOffset(v, Env::VT_TOPIC) &&
            v.VerifyVector(env->topic()) &&
            t->VerifyField<std::uint8_t>(v, Env::VT_MESSAGE_TYPE, 1) &&
            t->VerifyOffset(v, Env::VT_MESSAGE) && t->VerifyOffset(v, Env::VT_MESSAGE_ID) &&
            v.VerifyVector(env->message_id()) && v.EndTable();
  if (!ok) return std::nullopt;

  EnvelopeView out;
  out.txid = view(env->txid());
  out.topic = view(env->topic());
  out.message_id = view(env->message_id());
  out.message_type = static_cast<std::uint8_t>(env->message_type());
  out.has_message = env->message() != nullptr;
  if (out.message_type == kMessageTypeStream && out.has_message) {
    const auto* stream = static_cast<const Stream*>(env->message());
    if (!v.VerifyTable(stream)) return std::nullopt;
    out.stream = StreamView{stream->created_at(),      view(stream->sender_id()),
                            view(stream->payload()),   view(stream->device_type()),
                            view(stream->device_id()), stream->delivered_at_epoch_ms()};
  }
  return out;
}

Bytes build_ack(std::string_view txid, std::string_view topic) {
  flatbuffers::FlatBufferBuilder b(128);
  // spec §3.3: the union value of an ACK is an empty [ubyte] vector, not a table.
  auto u = str(b, "");
  return finish_envelope(b, txid, topic, "", kMessageTypeStreamAck, u.Union());
}

Bytes build_stream_frame(const StreamFrame& f) {
  flatbuffers::FlatBufferBuilder b(256 + f.payload.size());
  auto s = str(b, f.sender_id);
  auto pl = str(b, f.payload);
  auto dt = str(b, f.device_type);
  auto di = str(b, f.device_id);
  auto start = b.StartTable();
  b.AddOffset(Stream::VT_SENDER_ID, s);
  b.AddElement<std::uint32_t>(Stream::VT_CREATED_AT, f.created_at, 0);
  b.AddOffset(Stream::VT_PAYLOAD, pl);
  b.AddOffset(Stream::VT_DEVICE_TYPE, dt);
  b.AddOffset(Stream::VT_DEVICE_ID, di);
  b.AddElement<std::uint64_t>(Stream::VT_DELIVERED_AT_EPOCH_MS, f.delivered_at_epoch_ms, 0);
  auto st = b.EndTable(start);
  return finish_envelope(b, f.txid, f.topic, f.message_id, kMessageTypeStream,
                         flatbuffers::Offset<void>(st));
}

Bytes build_error(std::string_view txid) {
  return build_stream_frame(StreamFrame{.txid = txid, .payload = kErrorText});
}

Bytes build_stream_ack_frame(std::string_view txid, std::string_view topic) {
  flatbuffers::FlatBufferBuilder b(128);
  auto start = b.StartTable();
  auto ack = b.EndTable(start);
  return finish_envelope(b, txid, topic, "", kMessageTypeStreamAck,
                         flatbuffers::Offset<void>(ack));
}

std::optional<Reply> decode_reply(std::span<const std::uint8_t> frame) {
  auto env = decode_envelope(frame);
  if (!env) return std::nullopt;
  Reply r;
  r.message_type = env->message_type;
  r.txid = std::string(env->txid);
  r.topic = std::string(env->topic);
  if (env->stream) r.error_text = std::string(env->stream->payload);
  return r;
}

}  // namespace ts::wire
