// Conversion between the wire messages (MessageV0.*) and the model, with the validation that turns
// bad fields into errors naming what and where ("nic vnic_3: mac '52:54:00:zz:34:02' is not a MAC
// address").
#pragma once

#include <string>

#include "core/controller.h"
#include "core/dataplane.h"
#include "core/model.h"
#include "core/result.h"
#include "message_0.pb.h"

namespace butterfly {

Result<Vnic> VnicFromProto(const MessageV0_Nic& nic);
MessageV0_Nic VnicToProto(const Vnic& vnic, const std::string& path);
Result<VnicUpdate> VnicUpdateFromProto(const MessageV0_NicUpdateReq& update);

Result<Rule> RuleFromProto(const MessageV0_Rule& rule);
MessageV0_Rule RuleToProto(const Rule& rule);

Result<SecurityGroup> SgFromProto(const MessageV0_Sg& sg);
MessageV0_Sg SgToProto(const SecurityGroup& sg);

void CountersToProto(const VnicCounters& counters, MessageV0_NicStats* stats);
void DataplaneStatsToProto(const Controller& controller, MessageV0_DataplaneStats* stats);
// Local, static and learned MACs, and the flood targets of each VNI (fdb_list).
void FdbToProto(const Controller& controller, const MessageV0_FdbListReq& request,
                MessageV0_Response* response);

}  // namespace butterfly
