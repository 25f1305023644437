#include "api/status_graph.h"

#include <map>
#include <set>
#include <sstream>
#include <vector>

namespace butterfly {
namespace {

// Ids cannot hold quotes or backslashes (ValidateId), but the graph must stay valid dot whatever
// it is given.
std::string Quote(const std::string& text) {
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

}  // namespace

std::string StatusGraphDot(const Controller& controller) {
  const Model& model = controller.model();
  std::ostringstream dot;
  dot << "digraph butterfly {\n"
      << "  rankdir=LR;\n"
      << "  node [fontname=\"sans-serif\" fontsize=10];\n"
      << "  dataplane [shape=box3d label="
      << Quote("dataplane\n" + controller.DataplaneDescription()) << "];\n";

  std::map<uint32_t, std::vector<const Vnic*>> by_vni;
  for (const auto& [id, vnic] : model.vnics()) by_vni[vnic.vni].push_back(&vnic);
  for (const auto& [vni, vnics] : by_vni) {
    std::string vni_node = "vni:" + std::to_string(vni);
    dot << "  subgraph " << Quote("cluster_vni_" + std::to_string(vni)) << " {\n"
        << "    label=" << Quote("VNI " + std::to_string(vni)) << ";\n"
        << "    " << Quote(vni_node)
        << " [shape=ellipse label=" << Quote("VNI " + std::to_string(vni)) << "];\n";
    for (const Vnic* vnic : vnics) {
      VnicLink link = controller.Link(*vnic);
      dot << "    " << Quote("nic:" + vnic->id) << " [shape=box label="
          << Quote(vnic->id + "\n" + VnicTypeName(vnic->type) + " " + vnic->mac.ToString() + "\n" +
                   link.state)
          << "];\n";
      dot << "    " << Quote("nic:" + vnic->id) << " -> " << Quote(vni_node) << ";\n";
    }
    dot << "  }\n";
    dot << "  " << Quote(vni_node) << " -> dataplane;\n";
  }

  // Every group that exists or is referenced (a reference to a missing group is drawn dashed).
  std::set<std::string> sg_nodes;
  for (const auto& [id, sg] : model.security_groups()) sg_nodes.insert(id);
  for (const auto& [id, vnic] : model.vnics()) {
    sg_nodes.insert(vnic.security_groups.begin(), vnic.security_groups.end());
  }
  for (const auto& [id, sg] : model.security_groups()) {
    for (const auto& [remote, count] : sg.remote_sg_refs()) sg_nodes.insert(remote);
  }
  for (const std::string& id : sg_nodes) {
    const SecurityGroup* sg = model.FindSg(id);
    std::string label = sg ? id + "\n" + std::to_string(sg->rules().size()) + " rules, " +
                                 std::to_string(sg->members().size()) + " members"
                           : id + "\n(missing: empty)";
    dot << "  " << Quote("sg:" + id) << " [shape=hexagon" << (sg ? "" : " style=dashed")
        << " label=" << Quote(label) << "];\n";
  }
  for (const auto& [id, vnic] : model.vnics()) {
    for (const std::string& sg : vnic.security_groups) {
      dot << "  " << Quote("nic:" + id) << " -> " << Quote("sg:" + sg)
          << " [style=dotted label=\"uses\"];\n";
    }
  }
  for (const auto& [id, sg] : model.security_groups()) {
    for (const auto& [remote, count] : sg.remote_sg_refs()) {
      dot << "  " << Quote("sg:" + id) << " -> " << Quote("sg:" + remote)
          << " [style=dashed label=\"members\"];\n";
    }
  }
  dot << "}\n";
  return dot.str();
}

}  // namespace butterfly
