#pragma once
/// An MQTT 3.1.1 subscriber on Boost.Asio for ingest: a persistent session (clean_session=false)
/// whose QoS 1 messages are acknowledged only when the application says they are durable.
///
/// Threading: the subscriber owns one thread running its own io_context (start() .. stop());
/// the socket, the packet-id tables and the timers live there, and `on_message` runs there.
/// ack(), pause(), resume(), the accessors and stats() may be called from any thread (ack() takes
/// one mutex to queue the token and posts one wake-up while the subscriber thread is not already
/// draining acks). start() and stop() from any thread but the subscriber's own.
///
/// Session: connects with the stable `client_id` and clean_session=false, so the broker keeps
/// the subscriptions and queues QoS 1/2 messages while we are away. After EVERY accepted CONNACK,
/// whether or not the broker reports a session, it sends one SUBSCRIBE with every filter at
/// `qos` and checks the SUBACK: a refused filter (0x80) is an error log and a metric, and is
/// subscribed again on the same connection with back-off (1 s doubling up to `max_backoff`); a
/// granted QoS below `qos` is a warning; no SUBACK within `subscribe_timeout` closes the
/// connection, which is then re-established. subscribed() is true only while every filter is
/// granted on the current connection. It never sends UNSUBSCRIBE, and it does not re-subscribe
/// periodically while connected: a SUBACK'd subscription cannot vanish from a live session, and
/// every re-subscription makes the broker resend the retained messages of its filters.
///
/// Connection: connects asynchronously at start() and reconnects forever with exponential
/// back-off (250 ms doubling up to `max_backoff`, 30 s). The back-off restarts at 250 ms only
/// after a session that lasted at least 10 s, so two subscribers fighting over one client id
/// (the broker closes the older connection each time) slow down instead of spinning.
/// Keep-alive: a PINGREQ every `keep_alive_seconds`; no PINGRESP before the next one is due ->
/// the connection is dropped and re-established. Every attempt (TCP, TLS, CONNECT/CONNACK) has
/// `connect_timeout`. Errors are logged ("mqtt" logger, rate-limited) and counted in stats();
/// nothing throws out of the subscriber thread. stop() sends DISCONNECT: the session, with its
/// subscriptions and queued messages, stays on the broker.
///
/// Delivery guarantees (QoS 1, the intended use):
/// - at least once, as long as the broker keeps the session (it keeps running, or has
///   persistence) and does not drop queued messages (Mosquitto `max_queued_messages`, see
///   src/mqtt/README.md): a message is acknowledged to the broker (PUBACK) only when ack() is
///   called with its token while the connection it arrived on is still up.
/// - duplicates are possible: after a reconnect (or a restart with the same client id) the broker
///   delivers again every message whose PUBACK it did not receive, including ones the
///   application acked after the connection was lost (their tokens are stale: ack() counts them
///   and sends nothing). Such a redelivery usually has dup=true; a first delivery can too. Each
///   re-subscription also resends the retained messages of its filters (retain=true).
/// - a token acknowledges exactly the delivery it came with: never a later message that reuses
///   the packet id, in this connection or the next. Acking twice, or acking a default-
///   constructed token or a QoS 0 message, does nothing.
/// - order: on_message sees messages in the order the broker sends them (Mosquitto: redeliveries
///   first, then in publish order per publisher and topic). PUBACKs go out in the order ack() is
///   called; MQTT 3.1.1 section 4.6 asks for arrival order, Mosquitto accepts any order, and a
///   caller that acks whole batches in arrival order keeps it.
/// - QoS 0: at most once; there is nothing to acknowledge.
/// - QoS 2 (only if `qos` = 2 and the publisher uses it): PUBREC is sent on ack(), PUBCOMP on the
///   broker's PUBREL; a PUBLISH whose packet id is still between delivery and PUBREL is answered
///   and not delivered again. Across reconnects it is at least once, like QoS 1.
/// - a PUBLISH larger than `max_packet_bytes` is never buffered: its payload is read past, it is
///   logged at error level with its topic, counted in stats().oversized_dropped, and delivered
///   without its payload (Message::oversized_bytes), acknowledged through its token as usual, so
///   that the application keeps it as a dead letter before it is acknowledged.
///
/// Back-pressure: unacked() counts the QoS 1/2 messages delivered to on_message whose token has
/// not been acked yet, stale ones included (the application still holds them). While it is at
/// or above `max_unacked`, or while pause() is in effect, the subscriber stops reading the socket
/// before the next packet: TCP flow control holds the broker back, which queues the messages
/// (max_queued_messages!). It resumes when ack() brings unacked() below the bound or resume() is
/// called. While reading is paused, PINGREQs are still sent, and the ping and SUBACK timeouts are
/// suspended (their answers sit unread behind the paused messages).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/metrics.hpp"

namespace ts::mqtt {

/// Identifies one delivery of one message for ack(): its packet id, QoS, the connection
/// (generation) it arrived on and a number unique to the delivery. Opaque, trivially copyable
/// (16 bytes); a default-constructed token acknowledges nothing.
class AckToken {
 public:
  AckToken() = default;
  std::uint16_t packet_id() const noexcept { return packet_id_; }
  std::uint8_t qos() const noexcept { return qos_; }
  /// The connection the message arrived on: 1 for the first accepted CONNACK, +1 per reconnect.
  std::uint32_t generation() const noexcept { return generation_; }

 private:
  friend class Subscriber;
  std::uint64_t delivery_ = 0;  // unique per delivery of one Subscriber; 0 = nothing to ack
  std::uint32_t generation_ = 0;
  std::uint16_t packet_id_ = 0;
  std::uint8_t qos_ = 0;
};

/// One inbound PUBLISH, handed to on_message. The views point into the subscriber's read buffer
/// and are valid only until on_message returns: copy what you keep. The token may be kept and
/// passed to ack() later, from any thread.
struct Message {
  std::string_view topic;
  std::string_view payload;
  std::uint8_t qos = 0;  ///< as delivered: min(published QoS, granted QoS)
  bool retain = false;   ///< a retained message, sent because of a (re-)subscription
  bool dup = false;      ///< the broker may have delivered it before
  AckToken token;
  /// Non-zero: a PUBLISH of this many bytes (remaining length) over `max_packet_bytes`. Its
  /// payload was read past, so `payload` is empty. Delivered (and acknowledged through its
  /// token, like any message) so that the application can keep a record of it.
  std::size_t oversized_bytes = 0;
};

/// Settings of a Subscriber; fixed after construction.
struct SubscriberOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  bool tls = false;             ///< TLS to the broker (ssl://, mqtts://)
  std::string ca_file;          ///< PEM trust anchors; empty: the system's default CAs
  std::string cert_file;        ///< client certificate chain (PEM), optional
  std::string key_file;         ///< its private key (PEM); empty: taken from cert_file
  bool verify_hostname = true;  ///< check the broker certificate against `host` (name or IP)
  /// Required and stable across restarts: the broker finds the persistent session by it. Two
  /// processes with one id take the session from each other (the broker closes the older one).
  std::string client_id;
  std::string username;  ///< empty: no credentials
  std::string password;  ///< sent only with a username
  /// Topic filters (MQTT wildcards allowed), all subscribed at `qos` in one SUBSCRIBE.
  std::vector<std::string> filters;
  std::uint8_t qos = 1;         ///< requested QoS, 0..2
  int keep_alive_seconds = 30;  ///< 1..65535; 0 disables keep-alive pings
  std::chrono::milliseconds connect_timeout{30'000};    ///< TCP + TLS + CONNACK, per attempt
  std::chrono::milliseconds subscribe_timeout{10'000};  ///< SUBSCRIBE -> SUBACK, while reading
  std::chrono::milliseconds max_backoff{30'000};        ///< reconnect / re-subscribe delay cap
  /// Delivered QoS 1/2 messages not yet acked at which reading stops; 0 = no bound.
  std::size_t max_unacked = 50'000;
  /// Largest PUBLISH (Remaining Length) delivered; larger ones are dropped (see above).
  std::size_t max_packet_bytes = 8 * 1024 * 1024;
};

/// Counters of one subscriber, incremented on its thread and readable from any thread.
struct SubscriberStats {
  core::Counter connects;          ///< sessions established (CONNACK accepted)
  core::Counter disconnects;       ///< established sessions lost (not counting stop())
  core::Counter connect_failures;  ///< attempts that did not reach an accepted CONNACK
  core::Counter session_resets;    ///< CONNACKs without a session after a previous one
  core::Counter subscribe_attempts;  ///< SUBSCRIBE packets sent
  core::Counter subscribe_ok;        ///< SUBACKs granting every filter of their SUBSCRIBE
  core::Counter subscribe_refused;   ///< SUBACKs refusing at least one filter (retried)
  core::Counter subscribe_timeouts;  ///< no SUBACK in time (the connection is re-established)
  core::Counter subscribe_lost;      ///< the connection ended before the SUBACK arrived
  core::Counter messages_received;   ///< PUBLISH packets delivered to on_message
  core::Counter duplicates_suppressed;  ///< QoS 2 PUBLISH of an id still in flight: not delivered
  core::Counter acks_sent;              ///< PUBACK/PUBREC sent for ack()
  core::Counter stale_acks;             ///< ack() of a delivery from a lost connection: not sent
  core::Counter oversized_dropped;      ///< PUBLISH over max_packet_bytes: payload dropped
  core::Counter handler_errors;         ///< on_message threw (the message stays unacked)
  core::Counter read_pauses;            ///< times reading stopped (max_unacked or pause())
  core::Counter bytes_read;             ///< bytes read from the broker connection
  /// Keep-alive round trips (PINGRESP received). The broker handles one connection's packets
  /// in order, so a PINGRESP means it has read every PUBACK sent before its PINGREQ.
  core::Counter pingresps;
};

class Subscriber {
 public:
  /// Called on the subscriber thread for every delivered PUBLISH. While it runs, nothing else
  /// is read: a slow handler slows the subscription down (that is back-pressure too). Must not
  /// block for long and should not throw: an exception is logged and counted, and the message
  /// is left unacknowledged (not counted in unacked(); the broker redelivers it after the next
  /// reconnect). It may call ack(), pause() and resume(); never stop().
  using MessageHandler = std::function<void(const Message&)>;

  /// Validates the options and loads the TLS files. Throws std::invalid_argument for an empty
  /// client_id, no filters, an invalid filter (spec 4.7), qos > 2 or a keep-alive out of range,
  /// and std::runtime_error for an unreadable CA, certificate or key file; never for an
  /// unreachable broker.
  Subscriber(SubscriberOptions options, MessageHandler on_message);
  /// Calls stop().
  ~Subscriber();

  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  /// Starts the subscriber thread and the first connection attempt. Once.
  void start();

  /// Flushes the acks already queued, sends DISCONNECT if connected (never UNSUBSCRIBE), closes
  /// the connection and joins the thread (bounded: about two seconds). Idempotent. Messages
  /// delivered and not acked by then are redelivered to the next subscriber with this client_id.
  void stop();

  /// Any thread. Acknowledges the delivery `token` came with (see the class comment). Cheap:
  /// queues the token; the subscriber thread sends the PUBACK. Acks queued before stop() are sent
  /// before its DISCONNECT; after stop() it does nothing.
  void ack(const AckToken& token);
  /// Any thread. ack() for many tokens under one lock and one wake-up.
  void ack(std::span<const AckToken> tokens);

  /// Any thread. Stops reading from the broker before the next packet until resume(); for a
  /// bounded queue downstream that is full. Not counted: pause() twice needs one resume().
  void pause();
  void resume();

  /// True while a broker session is up (CONNACK accepted, connection not yet lost).
  bool connected() const;
  /// True while every filter is granted on the current connection.
  bool subscribed() const;
  /// True while connected on a session the broker kept (CONNACK "session present"): its
  /// subscriptions are in force before our SUBSCRIBE is answered, which, behind a large backlog
  /// of queued messages, can take a while.
  bool session_resumed() const;
  /// True from pause() to resume(), and while unacked() >= max_unacked holds reading back.
  bool paused() const;
  /// Delivered QoS 1/2 messages whose token has not been acked (stale ones included).
  std::size_t unacked() const;
  /// When the last PUBLISH was delivered; the epoch if none yet.
  std::chrono::system_clock::time_point last_message_time() const;

  const SubscriberStats& stats() const;

  /// Registers the teslasync_mqtt_* metrics of this subscriber (docs/metrics.md) on `registry`:
  /// callbacks read the stats when scraped, and teslasync_mqtt_subscription_attempts_total{result}
  /// is a family whose children the subscriber increments from then on. Call once, before
  /// start(). The callbacks keep the statistics alive, so the registry may outlive the
  /// subscriber; the registry must outlive the subscriber (it increments the family).
  void register_metrics(core::MetricsRegistry& registry);

 private:
  struct Shared;  // statistics and gauges, shared with the metric callbacks
  struct Impl;    // subscriber-thread state: socket, TLS context, packet ids, timers

  const SubscriberOptions options_;
  const MessageHandler on_message_;
  std::shared_ptr<Shared> shared_;

  std::mutex acks_mutex_;        // guards acks_ and acks_scheduled_
  std::vector<AckToken> acks_;   // queued by ack(), taken by the subscriber thread
  bool acks_scheduled_ = false;  // a drain is posted and has not taken acks_ yet
  std::atomic<bool> stopped_{false};  // stop() returned: ack() and resume() do nothing

  std::unique_ptr<Impl> impl_;  // owns the io_context; used by the subscriber thread only
  std::thread thread_;
  std::once_flag started_, stopped_once_;
};

}  // namespace ts::mqtt
