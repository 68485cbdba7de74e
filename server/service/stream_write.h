// Writing to a server stream with a bound on how long a write may stay
// blocked. A client that reads nothing fills the stream's flow-control
// window and a write then blocks: gRPC buffers no more than the window, and
// after --stream-idle-timeout the stream is cancelled (the write returns
// false, the handler stops, the slot and memory it held are freed).
#ifndef GARDEN_SERVER_SERVICE_STREAM_WRITE_H_
#define GARDEN_SERVER_SERVICE_STREAM_WRITE_H_

#include <chrono>

#include "grpcpp/grpcpp.h"

namespace garden {

// Set before serving; zero (the default) means writes may block forever.
void SetStreamIdleTimeout(std::chrono::milliseconds timeout);

// While alive, `context` is cancelled if it outlives the idle timeout.
class ScopedStreamWrite {
 public:
  explicit ScopedStreamWrite(grpc::ServerContext* context);
  ~ScopedStreamWrite();
  ScopedStreamWrite(const ScopedStreamWrite&) = delete;
  ScopedStreamWrite& operator=(const ScopedStreamWrite&) = delete;

 private:
  grpc::ServerContext* context_;
  bool watched_;
};

// writer->Write(message), cancelled after the idle timeout; false once the
// stream is over (client gone, cancelled, or timed out).
template <typename Message>
bool WriteToStream(grpc::ServerContext* context,
                   grpc::ServerWriter<Message>* writer, const Message& message) {
  ScopedStreamWrite watch(context);
  return writer->Write(message);
}

}  // namespace garden

#endif  // GARDEN_SERVER_SERVICE_STREAM_WRITE_H_
