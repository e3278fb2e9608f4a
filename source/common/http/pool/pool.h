// The seam between a request (the router, a shadow request) and an upstream
// connection pool: the request asks a Pool for a stream, encodes on the
// UpstreamStream it is handed, and gives it back. The HTTP/1 pool hands out a
// whole connection per request; the HTTP/2 pool one stream of a shared one.
#pragma once

#include <cstdint>
#include <functional>

#include "source/common/buffer/buffer.h"
#include "source/common/http/codec.h"
#include "source/common/upstream/cluster.h"

namespace courier::http::pool {

class UpstreamStream {
 public:
  virtual ~UpstreamStream() = default;
  // Starts the request; its response goes to decoder.
  virtual RequestEncoder& newStream(ResponseDecoder& decoder) = 0;
  // Writes what was encoded so far.
  virtual void flush() = 0;
  // Requests the connection underneath has carried, this one included.
  virtual uint32_t requestCount() const = 0;
  // HTTP/1: response bytes arrive through PoolCallbacks::onUpstreamData and
  // the request feeds them here. HTTP/2 pools dispatch themselves.
  virtual DispatchResult dispatch(buffer::Buffer& data) = 0;
  // After onUpstreamClosed(): completes a close-delimited HTTP/1 response, or
  // says the response was cut short.
  virtual DispatchResult onConnectionClosed() = 0;
  // The connection can't carry another request after this one.
  virtual bool shouldClose() const = 0;
  // HTTP/1 upgrade in progress: bytes flow raw both ways.
  virtual bool tunneling() const = 0;
  // The tunnel's client finished: flush and end the upstream side.
  virtual void closeUpstream() = 0;
  // Stop (or resume) reading the response.
  virtual void readDisable(bool disable) = 0;
  // After onUpstreamClosed(): the peer refused the stream unprocessed
  // (REFUSED_STREAM, or above a GOAWAY's last stream id), so sending the
  // request again elsewhere is safe whatever its method.
  virtual bool refused() const { return false; }
};

// What a request waiting for (or holding) an upstream stream is told.
class PoolCallbacks {
 public:
  virtual ~PoolCallbacks() = default;
  virtual void onPoolReady(UpstreamStream& stream) = 0;
  // Overflow: the cluster's max_pending_requests circuit breaker is open.
  enum class Failure { ConnectFailure, Timeout, Overflow };
  virtual void onPoolFailure(Failure reason) = 0;
  // The stream handed out is gone: its connection was closed by the peer or
  // failed while in use, or (HTTP/2) the stream itself was reset or refused.
  virtual void onUpstreamClosed() = 0;
  // HTTP/1: bytes arrived for the request (feed them to UpstreamStream::dispatch).
  virtual void onUpstreamData(buffer::Buffer& data) = 0;
  // The upstream can't take the request body as fast as it comes (true), or
  // can again (false): pause or resume whatever feeds it.
  virtual void onUpstreamWatermark(bool above) { (void)above; }
};

class Pool {
 public:
  virtual ~Pool() = default;
  // Ready now or later (onPoolReady), or a failure.
  virtual void newStream(PoolCallbacks& callbacks) = 0;
  // The caller no longer waits, or abandons the stream it holds.
  virtual void cancel(PoolCallbacks& callbacks) = 0;
  // The request is done with the stream; reusable: the whole exchange
  // completed cleanly and the connection may carry more.
  virtual void release(UpstreamStream& stream, bool reusable) = 0;
  // The cluster was removed or replaced: finish what is in flight, keep
  // nothing idle; on_drained runs (posted) once nothing is left.
  virtual void drain(std::function<void()> on_drained) = 0;
  virtual const upstream::ClusterConstSharedPtr& cluster() const = 0;
};

}  // namespace courier::http::pool
