// How Garden's generated gRPC code reads messages off the wire: as gRPC does
// (grpcpp's protobuf SerializationTraits), except that a garden.v1 message
// that does not parse is INVALID_ARGUMENT with a message naming its type and
// the likely cause, not gRPC's INTERNAL with an empty message. Most often
// the cause is a string field that is not UTF-8, which proto3 refuses.
//
// The generated handlers and stubs (de)serialize through MessageLite, so
// this specializes SerializationTraits<MessageLite>; it is force-included
// (-include) into the generated *.grpc.pb.cc files, where those handlers are
// instantiated, ahead of everything else. Other messages behave exactly as
// grpcpp's own traits make them.
#ifndef GARDEN_PROTO_GARDEN_REQUEST_TRAITS_H_
#define GARDEN_PROTO_GARDEN_REQUEST_TRAITS_H_

#include <string>

#include "google/protobuf/message_lite.h"
#include "grpcpp/impl/codegen/proto_buffer_reader.h"
#include "grpcpp/impl/codegen/proto_buffer_writer.h"
#include "grpcpp/impl/codegen/proto_utils.h"

template <>
class grpc::SerializationTraits<grpc::protobuf::MessageLite, void> {
 public:
  static grpc::Status Serialize(const grpc::protobuf::MessageLite& msg,
                                grpc::ByteBuffer* bb, bool* own_buffer) {
    return grpc::GenericSerialize<grpc::ProtoBufferWriter,
                                  grpc::protobuf::MessageLite>(msg, bb, own_buffer);
  }
  static grpc::Status Deserialize(grpc::ByteBuffer* buffer,
                                  grpc::protobuf::MessageLite* msg) {
    grpc::Status status =
        grpc::GenericDeserialize<grpc::ProtoBufferReader,
                                 grpc::protobuf::MessageLite>(buffer, msg);
    const std::string type = msg->GetTypeName();
    if (status.ok() || status.error_code() != grpc::StatusCode::INTERNAL ||
        type.rfind("garden.v1.", 0) != 0) {
      return status;
    }
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        "the message is not a valid " + type +
            ": its bytes do not parse (string fields must be UTF-8; garden "
            "replaces invalid sequences with U+FFFD before sending)");
  }
};

#endif  // GARDEN_PROTO_GARDEN_REQUEST_TRAITS_H_
