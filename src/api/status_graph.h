// The `status` graph: VNIs, vnics, security groups and how they link, in graphviz dot.
#pragma once

#include <string>

#include "core/controller.h"

namespace butterfly {

std::string StatusGraphDot(const Controller& controller);

}  // namespace butterfly
