// The server itself and access to it: its health (the standard health
// protocol) and a new access token. Each renders as json or table.
#ifndef GARDEN_CLIENT_OUTPUT_SERVICE_H_
#define GARDEN_CLIENT_OUTPUT_SERVICE_H_

#include <ostream>
#include <string>

#include "client/output/format.h"
#include "grpc/health/v1/health.pb.h"

namespace garden::client {

// json: {"status": "SERVING"} on one line. table: the status word.
void RenderHealth(const grpc::health::v1::HealthCheckResponse& response,
                  Format format, std::ostream& out);

// json: {"name", "token", "line"} on one line. table: the token on the first
// line, the token file's line on the second (what scripts read).
void RenderNewToken(const std::string& name, const std::string& token,
                    const std::string& line, Format format, std::ostream& out);

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_SERVICE_H_
