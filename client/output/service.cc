#include "client/output/service.h"

#include "client/output/json.h"

namespace garden::client {

void RenderHealth(const grpc::health::v1::HealthCheckResponse& response,
                  Format format, std::ostream& out) {
  const std::string status =
      grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
  if (format == Format::kJson) {
    WriteJson({{"status", status}}, out);
  } else {
    out << status << "\n";
  }
}

void RenderNewToken(const std::string& name, const std::string& token,
                    const std::string& line, Format format, std::ostream& out) {
  if (format == Format::kJson) {
    WriteJson({{"name", name}, {"token", token}, {"line", line}}, out);
  } else {
    out << token << "\n" << line << "\n";
  }
}

}  // namespace garden::client
