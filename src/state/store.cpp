#include "state/store.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <tuple>
#include <unordered_map>

namespace ts::state {
namespace {

using signal::Kind;
using signal::Signal;
using signal::Source;
using signal::Timestamp;
using signal::Value;

constexpr Timestamp kNever = std::numeric_limits<Timestamp>::min();
constexpr std::size_t kAppliedKinds = 5;  // the values of Applied
/// Texts up to this many bytes live inside the entry.
constexpr std::size_t kInlineText = 16;
/// Values interned per shard at most (names are always interned). Enum, Doors and Tires values
/// come from closed sets (the proto's enum names, boolean maps), so this bound only matters for
/// a misbehaving source; beyond it values are stored like strings.
constexpr std::size_t kMaxInterned = 8192;

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

/// Strings by id: one shard's signal names, or its enum/doors/tires values.
class Interner {
 public:
  std::uint32_t intern(std::string_view s) {
    if (auto it = ids_.find(s); it != ids_.end()) return it->second;
    const auto id = static_cast<std::uint32_t>(strings_.size());
    auto [it, inserted] = ids_.emplace(std::string(s), id);
    strings_.push_back(&it->first);  // node-based map: the key's address is stable
    return id;
  }
  /// Interns a value unless the table is full.
  std::optional<std::uint32_t> intern_value(std::string_view s) {
    if (auto it = ids_.find(s); it != ids_.end()) return it->second;
    if (strings_.size() >= kMaxInterned) return std::nullopt;
    return intern(s);
  }
  std::optional<std::uint32_t> find(std::string_view s) const {
    if (auto it = ids_.find(s); it != ids_.end()) return it->second;
    return std::nullopt;
  }
  std::string_view at(std::uint32_t id) const { return *strings_[id]; }

 private:
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> ids_;
  std::vector<const std::string*> strings_;
};

enum class TextRep : std::uint8_t { None, Inline, Heap, Interned };

/// One signal of one vehicle in 40 bytes: the value's meaningful members only (see
/// signal::Kind), the name as an interned id. Move-only; owns its heap text.
class Slot {
 public:
  Slot() noexcept { u_.integer = 0; }
  ~Slot() { release(); }
  Slot(Slot&& o) noexcept { take(o); }
  Slot& operator=(Slot&& o) noexcept {
    if (this != &o) {
      release();
      take(o);
    }
    return *this;
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

  Timestamp ts = 0;
  Timestamp received_at = 0;

 private:
  // Declared here for the layout: 8 + 8 + 16 + 4 + 4 x 1 = 40 bytes, no padding.
  union Payload {
    std::int64_t integer;
    double number;
    double pair[2];  // Location: latitude, longitude
    char chars[kInlineText];
    struct {
      char* data;
      std::uint32_t size;
    } heap;
    std::uint32_t interned;
  } u_;

 public:
  std::uint32_t name = 0;
  Source source = Source::Stream;

  Kind kind() const { return kind_; }

  void set_value(const Value& v, Interner& values) {
    release();
    kind_ = v.kind;
    u_.integer = 0;
    switch (v.kind) {
      case Kind::Invalid:
        break;
      case Kind::Bool:
      case Kind::Int:
        u_.integer = v.integer;
        break;
      case Kind::Float:
        u_.number = v.number;
        break;
      case Kind::Location:
        u_.pair[0] = v.number;
        u_.pair[1] = v.number2;
        break;
      case Kind::Enum:
      case Kind::Doors:
      case Kind::Tires:
        if (auto id = values.intern_value(v.text)) {
          rep_ = TextRep::Interned;
          u_.interned = *id;
          break;
        }
        set_text(v.text);
        break;
      case Kind::String:
      case Kind::Time:
        set_text(v.text);
        break;
    }
  }

  /// Same value as `v` (floats compared bit for bit, so a replayed NaN is the same value).
  bool same_value(const Value& v, const Interner& values) const {
    if (v.kind != kind_) return false;
    switch (kind_) {
      case Kind::Invalid:
        return true;
      case Kind::Bool:
      case Kind::Int:
        return u_.integer == v.integer;
      case Kind::Float:
        return std::memcmp(&u_.number, &v.number, sizeof(double)) == 0;
      case Kind::Location:
        return std::memcmp(&u_.pair[0], &v.number, sizeof(double)) == 0 &&
               std::memcmp(&u_.pair[1], &v.number2, sizeof(double)) == 0;
      default:
        return text(values) == v.text;
    }
  }

  Value value(const Interner& values) const {
    switch (kind_) {
      case Kind::Invalid:
        return Value::invalid();
      case Kind::Bool:
        return Value::boolean(u_.integer != 0);
      case Kind::Int:
        return Value::int64(u_.integer);
      case Kind::Float:
        return Value::float64(u_.number);
      case Kind::Location:
        return Value::location(u_.pair[0], u_.pair[1]);
      default:
        return Value{.kind = kind_, .text = std::string(text(values))};
    }
  }

 private:
  std::string_view text(const Interner& values) const {
    switch (rep_) {
      case TextRep::Inline:
        return {u_.chars, inline_size_};
      case TextRep::Heap:
        return {u_.heap.data, u_.heap.size};
      case TextRep::Interned:
        return values.at(u_.interned);
      case TextRep::None:
        break;
    }
    return {};
  }

  void set_text(std::string_view s) {
    if (s.size() <= kInlineText) {
      rep_ = TextRep::Inline;
      inline_size_ = static_cast<std::uint8_t>(s.size());
      if (!s.empty()) std::memcpy(u_.chars, s.data(), s.size());
      return;
    }
    char* data = new char[s.size()];
    std::memcpy(data, s.data(), s.size());
    rep_ = TextRep::Heap;
    u_.heap.data = data;
    u_.heap.size = static_cast<std::uint32_t>(s.size());
  }

  void release() noexcept {
    if (rep_ == TextRep::Heap) delete[] u_.heap.data;
    rep_ = TextRep::None;
  }

  void take(Slot& o) noexcept {
    ts = o.ts;
    received_at = o.received_at;
    name = o.name;
    source = o.source;
    kind_ = o.kind_;
    rep_ = o.rep_;
    inline_size_ = o.inline_size_;
    u_ = o.u_;
    o.rep_ = TextRep::None;
  }

  Kind kind_ = Kind::Invalid;
  TextRep rep_ = TextRep::None;
  std::uint8_t inline_size_ = 0;
};
static_assert(sizeof(Slot) == 40, "an L1 entry should stay at 40 bytes");

struct Vehicle {
  std::vector<Slot> slots;  // sorted by name id
  Timestamp last_event = kNever;
  Timestamp last_received[2] = {kNever, kNever};  // by Source
  VehicleClock clock;
};

/// A VIN and its hash, computed once per call: it picks the shard and the map bucket.
struct VinRef {
  std::string_view vin;
  std::size_t hash;
};
VinRef vin_ref(std::string_view vin) { return {vin, std::hash<std::string_view>{}(vin)}; }

/// The map key: the VIN inline (VINs are 17 characters; longer keys go to the heap) and its
/// hash, kept because libstdc++ does not cache hashes for hashers it deems fast and would
/// otherwise hash every VIN it walks past in a bucket chain.
class VinKey {
 public:
  VinKey(std::string_view vin, std::size_t h) : hash(h), size_(vin.size()) {
    char* p = inline_;
    if (size_ > sizeof inline_) p = heap_ = new char[size_];
    if (size_ != 0) std::memcpy(p, vin.data(), size_);
  }
  ~VinKey() {
    if (size_ > sizeof inline_) delete[] heap_;
  }
  VinKey(const VinKey&) = delete;
  VinKey& operator=(const VinKey&) = delete;

  std::string_view vin() const { return {size_ > sizeof inline_ ? heap_ : inline_, size_}; }

  const std::size_t hash;

 private:
  std::size_t size_;
  union {
    char inline_[24];
    char* heap_;
  };
};
std::string_view vin_of(const VinKey& k) { return k.vin(); }
std::string_view vin_of(const VinRef& k) { return k.vin; }

struct VinHash {
  using is_transparent = void;
  std::size_t operator()(const VinKey& k) const noexcept { return k.hash; }
  std::size_t operator()(const VinRef& k) const noexcept { return k.hash; }
};
struct VinEq {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const noexcept {
    return a.hash == b.hash && vin_of(a) == vin_of(b);
  }
};

struct alignas(64) Shard {
  mutable std::mutex mutex;  // guards everything below
  std::unordered_map<VinKey, Vehicle, VinHash, VinEq> vehicles;
  Interner names;   // signal names: ids dense from 0 in first-seen order (see find_slot)
  Interner values;  // enum, doors and tires values
};

/// The first slot whose name id is not less than `id` (std::lower_bound). Slots hold distinct
/// ids in order, so slot i has an id >= i and the one for `id` sits at an index <= id. Ids are
/// given per shard in first-seen order and vehicles mostly share their signal names, so it
/// usually sits exactly there: one probe instead of a binary search's cache misses.
template <class Slots>
auto find_slot(Slots& slots, std::uint32_t id) {
  if (slots.empty()) return slots.begin();
  const std::size_t hi = std::min<std::size_t>(id, slots.size() - 1);
  const std::uint32_t at = slots[hi].name;
  if (at == id) return slots.begin() + static_cast<std::ptrdiff_t>(hi);
  if (at < id) return slots.end();  // then hi is the last slot
  return std::lower_bound(slots.begin(), slots.begin() + static_cast<std::ptrdiff_t>(hi), id,
                          [](const Slot& slot, std::uint32_t n) { return slot.name < n; });
}

std::optional<Timestamp> held(Timestamp t) {
  if (t == kNever) return std::nullopt;
  return t;
}

}  // namespace

std::string_view applied_name(Applied applied) noexcept {
  switch (applied) {
    case Applied::Newer:
      return "newer";
    case Applied::Same:
      return "same";
    case Applied::Older:
      return "older";
    case Applied::Future:
      return "future";
    case Applied::Conflict:
      return "conflict";
  }
  return "older";
}

struct Store::Impl {
  Impl(std::size_t n, std::chrono::microseconds skew)
      : shard_count(std::max<std::size_t>(n, 1)), max_future_skew(skew.count()) {
    shards = std::make_unique<Shard[]>(shard_count);
  }

  struct Metrics {
    core::Gauge& vehicles;
    core::Gauge& signals;
    std::array<core::Counter*, kAppliedKinds> applied;  // by Applied
  };

  Shard& shard_for(const VinRef& vin) const {
    // The shard's map picks buckets by the low bits of the same hash: take the shard from the
    // high bits of a multiplicative mix so that shard choice and bucket choice are independent.
    const std::uint64_t h = vin.hash;
    return shards[((h * 0x9E3779B97F4A7C15ULL) >> 32) % shard_count];
  }

  /// The vehicle for `vin` in `shard` (locked by the caller), created if new (`grew` set).
  Vehicle& vehicle(Shard& shard, const VinRef& vin, bool& grew) {
    auto it = shard.vehicles.find(vin);
    if (it != shard.vehicles.end()) return it->second;
    grew = true;
    vehicles.fetch_add(1, std::memory_order_relaxed);
    return shard.vehicles
        .emplace(std::piecewise_construct, std::forward_as_tuple(vin.vin, vin.hash),
                 std::forward_as_tuple())
        .first->second;
  }

  /// The rule of the class comment, with `shard` locked by the caller.
  Applied apply_locked(Shard& shard, Vehicle& v, const Signal& s, bool& grew) {
    Timestamp& received = v.last_received[s.source == Source::Poll ? 1 : 0];
    received = std::max(received, s.received_at);
    // Unsigned: the difference of two extreme times (a corrupt row) must not overflow.
    if (s.ts > s.received_at && static_cast<std::uint64_t>(s.ts) - static_cast<std::uint64_t>(s.received_at) >
                                    static_cast<std::uint64_t>(max_future_skew)) {
      ++v.clock.future_signals;
      v.clock.last_future_ts = s.ts;
      v.clock.last_future_received_at = s.received_at;
      return Applied::Future;
    }
    const std::uint32_t id = shard.names.intern(s.name);
    auto it = find_slot(v.slots, id);
    if (it == v.slots.end() || it->name != id) {
      const auto index = it - v.slots.begin();
      if (v.slots.size() == v.slots.capacity()) {
        // Grow by an eighth rather than doubling: a vehicle gains its ~100 signals in its first
        // minutes and keeps them for life, so capacity beyond that is waste (<= 12.5 %).
        v.slots.reserve(v.slots.size() + std::max<std::size_t>(4, v.slots.size() / 8));
      }
      it = v.slots.emplace(v.slots.begin() + index);
      it->name = id;
      signals.fetch_add(1, std::memory_order_relaxed);
      grew = true;
    } else {
      Slot& slot = *it;
      if (s.ts < slot.ts) return Applied::Older;
      if (s.ts == slot.ts) {
        if (slot.same_value(s.value, shard.values)) return Applied::Same;
        ++v.clock.same_time_conflicts;
        return Applied::Conflict;
      }
    }
    it->ts = s.ts;
    it->received_at = s.received_at;
    it->source = s.source;
    it->set_value(s.value, shard.values);
    v.last_event = std::max(v.last_event, s.ts);
    return Applied::Newer;
  }

  /// Applies signals in order, locking each shard once per run of signals that fall into it.
  /// True when a vehicle or a signal was added (the gauges need an update).
  template <class OnResult>
  bool apply_many(std::span<const Signal> list, OnResult&& on_result) {
    bool grew = false;
    std::size_t i = 0;
    while (i < list.size()) {
      VinRef ref = vin_ref(list[i].vin);
      Shard& shard = shard_for(ref);
      std::lock_guard lock(shard.mutex);
      Vehicle* v = nullptr;
      std::string_view vin;
      for (; i < list.size(); ++i) {
        const Signal& s = list[i];
        if (v == nullptr || s.vin != vin) {
          if (v != nullptr) {  // the first signal's ref is the one the shard was chosen by
            ref = vin_ref(s.vin);
            if (&shard_for(ref) != &shard) break;
          }
          v = &vehicle(shard, ref, grew);  // node-based: valid while the lock is held
          vin = s.vin;
        }
        on_result(i, apply_locked(shard, *v, s, grew));
      }
    }
    return grew;
  }

  void update_gauges() {
    if (!metrics) return;
    metrics->vehicles.set(static_cast<double>(vehicles.load(std::memory_order_relaxed)));
    metrics->signals.set(static_cast<double>(signals.load(std::memory_order_relaxed)));
  }

  void count(const std::array<std::size_t, kAppliedKinds>& n) {
    if (!metrics) return;
    for (std::size_t i = 0; i < kAppliedKinds; ++i) {
      if (n[i] != 0) metrics->applied[i]->inc(n[i]);
    }
  }

  static void append_signals(std::vector<Signal>& out, std::string_view vin, const Vehicle& v,
                             const Shard& shard) {
    for (const Slot& slot : v.slots) {
      out.push_back(Signal{.vin = std::string(vin),
                           .name = std::string(shard.names.at(slot.name)),
                           .ts = slot.ts,
                           .received_at = slot.received_at,
                           .source = slot.source,
                           .value = slot.value(shard.values)});
    }
  }

  const std::size_t shard_count;
  const std::int64_t max_future_skew;  // µs
  std::unique_ptr<Shard[]> shards;
  std::atomic<std::size_t> vehicles{0};
  std::atomic<std::size_t> signals{0};
  std::optional<Metrics> metrics;
  std::atomic<std::size_t> drain_cursor{0};
};

Store::Store(std::size_t shards, std::chrono::microseconds max_future_skew)
    : impl_(std::make_unique<Impl>(shards, max_future_skew)) {}

Store::Store(core::MetricsRegistry& metrics, std::size_t shards,
             std::chrono::microseconds max_future_skew)
    : Store(shards, max_future_skew) {
  auto& apply = metrics.counter(
      "teslasync_state_apply_total",
      "Signals applied to the in-memory latest state (L1), by result: newer (stored), same "
      "(duplicate), older (rejected as stale), future (event time too far ahead of the receive "
      "time), conflict (same event time, other value: the first stays)",
      {"result"});
  Impl::Metrics m{
      .vehicles = metrics.gauge("teslasync_state_vehicles", "Vehicles held in L1").get(),
      .signals =
          metrics.gauge("teslasync_state_signals", "Signals (latest values) held in L1").get(),
      .applied = {}};
  for (std::size_t i = 0; i < kAppliedKinds; ++i) {
    m.applied[i] = &apply.with({std::string(applied_name(static_cast<Applied>(i)))});
  }
  impl_->metrics.emplace(m);
  impl_->update_gauges();
}

Store::~Store() = default;

Applied Store::apply(const Signal& s) {
  Applied result = Applied::Older;
  const bool grew = impl_->apply_many(std::span<const Signal>(&s, 1),
                                      [&](std::size_t, Applied a) { result = a; });
  std::array<std::size_t, kAppliedKinds> n{};
  n[static_cast<std::size_t>(result)] = 1;
  impl_->count(n);
  if (grew) impl_->update_gauges();
  return result;
}

std::vector<Applied> Store::apply_batch(std::span<const Signal> signals) {
  std::vector<Applied> out(signals.size(), Applied::Older);
  std::array<std::size_t, kAppliedKinds> n{};
  const bool grew = impl_->apply_many(signals, [&](std::size_t i, Applied a) {
    out[i] = a;
    ++n[static_cast<std::size_t>(a)];
  });
  impl_->count(n);
  if (grew) impl_->update_gauges();
  return out;
}

LoadResult Store::load(std::span<const Signal> signals) {
  LoadResult r;
  impl_->apply_many(signals, [&](std::size_t, Applied a) {
    switch (a) {
      case Applied::Newer:
        ++r.newer;
        break;
      case Applied::Same:
        ++r.same;
        break;
      case Applied::Older:
        ++r.older;
        break;
      case Applied::Future:
        ++r.future;
        break;
      case Applied::Conflict:
        ++r.conflict;
        break;
    }
  });
  impl_->update_gauges();
  return r;
}

std::optional<Entry> Store::get(std::string_view vin, std::string_view name) const {
  const VinRef ref = vin_ref(vin);
  Shard& shard = impl_->shard_for(ref);
  std::lock_guard lock(shard.mutex);
  auto v = shard.vehicles.find(ref);
  const auto id = shard.names.find(name);
  if (v == shard.vehicles.end() || !id) return std::nullopt;
  const auto& slots = v->second.slots;
  auto it = find_slot(slots, *id);
  if (it == slots.end() || it->name != *id) return std::nullopt;
  return Entry{.value = it->value(shard.values),
               .ts = it->ts,
               .received_at = it->received_at,
               .source = it->source};
}

std::vector<std::pair<std::string, Entry>> Store::snapshot(std::string_view vin) const {
  std::vector<std::pair<std::string, Entry>> out;
  {
    const VinRef ref = vin_ref(vin);
    Shard& shard = impl_->shard_for(ref);
    std::lock_guard lock(shard.mutex);
    auto v = shard.vehicles.find(ref);
    if (v == shard.vehicles.end()) return out;
    out.reserve(v->second.slots.size());
    for (const Slot& slot : v->second.slots) {
      out.emplace_back(std::string(shard.names.at(slot.name)),
                       Entry{.value = slot.value(shard.values),
                             .ts = slot.ts,
                             .received_at = slot.received_at,
                             .source = slot.source});
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

std::vector<std::string> Store::vins() const {
  std::vector<std::string> out;
  out.reserve(vehicle_count());
  for (std::size_t i = 0; i < impl_->shard_count; ++i) {
    Shard& shard = impl_->shards[i];
    std::lock_guard lock(shard.mutex);
    for (const auto& [key, v] : shard.vehicles) out.emplace_back(key.vin());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::size_t Store::vehicle_count() const noexcept {
  return impl_->vehicles.load(std::memory_order_relaxed);
}

std::size_t Store::signal_count() const noexcept {
  return impl_->signals.load(std::memory_order_relaxed);
}

VehicleClock Store::clock(std::string_view vin) const {
  const VinRef ref = vin_ref(vin);
  Shard& shard = impl_->shard_for(ref);
  std::lock_guard lock(shard.mutex);
  auto v = shard.vehicles.find(ref);
  if (v == shard.vehicles.end()) return {};
  return v->second.clock;
}

std::optional<Timestamp> Store::last_event(std::string_view vin) const {
  const VinRef ref = vin_ref(vin);
  Shard& shard = impl_->shard_for(ref);
  std::lock_guard lock(shard.mutex);
  auto v = shard.vehicles.find(ref);
  if (v == shard.vehicles.end()) return std::nullopt;
  return held(v->second.last_event);
}

std::optional<Timestamp> Store::last_received(std::string_view vin,
                                              std::optional<Source> source) const {
  const VinRef ref = vin_ref(vin);
  Shard& shard = impl_->shard_for(ref);
  std::lock_guard lock(shard.mutex);
  auto v = shard.vehicles.find(ref);
  if (v == shard.vehicles.end()) return std::nullopt;
  const Timestamp* r = v->second.last_received;
  if (!source) return held(std::max(r[0], r[1]));
  return held(r[*source == Source::Poll ? 1 : 0]);
}

void Store::for_each(const std::function<void(const Signal&)>& f) const {
  std::vector<Signal> copy;
  for (std::size_t i = 0; i < impl_->shard_count; ++i) {
    copy.clear();
    {
      Shard& shard = impl_->shards[i];
      std::lock_guard lock(shard.mutex);
      for (const auto& [key, v] : shard.vehicles) {
        Impl::append_signals(copy, key.vin(), v, shard);
      }
    }
    for (const Signal& s : copy) f(s);
  }
}

std::vector<Signal> Store::drain(std::size_t max_signals) {
  std::vector<Signal> out;
  const std::size_t first = impl_->drain_cursor.fetch_add(1, std::memory_order_relaxed);
  std::size_t vehicles = 0;
  for (std::size_t k = 0; k < impl_->shard_count && out.size() < max_signals; ++k) {
    Shard& shard = impl_->shards[(first + k) % impl_->shard_count];
    std::lock_guard lock(shard.mutex);
    while (!shard.vehicles.empty() && out.size() < max_signals) {
      auto node = shard.vehicles.extract(shard.vehicles.begin());
      Impl::append_signals(out, node.key().vin(), node.mapped(), shard);
      impl_->signals.fetch_sub(node.mapped().slots.size(), std::memory_order_relaxed);
      ++vehicles;
    }
  }
  if (vehicles != 0) {
    impl_->vehicles.fetch_sub(vehicles, std::memory_order_relaxed);
    impl_->update_gauges();
  }
  return out;
}

}  // namespace ts::state
