// How an idle worker sleeps without costing the host CPU: it asks its VMs to kick it (vhost-user
// guest notifications), then waits in epoll on their kick eventfds, its TAP fds and its wake-up
// eventfd (written by the control side when something changes). A worker that polls an underlay
// queue, which cannot wake it, naps with a timer instead.
#pragma once

#include <cstdint>
#include <vector>

#include "pipeline/vnic_port.h"

namespace butterfly {

class IdleWaiter {
 public:
  // `wake_fd`: an eventfd the control side writes to wake this worker.
  explicit IdleWaiter(int wake_fd);
  ~IdleWaiter();
  IdleWaiter(const IdleWaiter&) = delete;
  IdleWaiter& operator=(const IdleWaiter&) = delete;

  // Watches `vnics` and turns their guests' notifications on. The caller polls once more
  // afterwards (a frame may have come before notifications were on), then calls Wait.
  void Arm(const std::vector<VnicPort*>& vnics);
  // Sleeps until a watched port has something or `timeout_ms` passed.
  void Wait(int timeout_ms);
  // Turns notifications off again: while busy the worker polls, and kicks would only cost.
  // Call it online, with the vnics published now: a device that went away during the sleep may
  // already be freed (its grace period did not wait for a sleeping worker), so only the vids
  // these vnics still hold are touched.
  void Disarm(const std::vector<VnicPort*>& vnics);

 private:
  struct Watched {
    int fd;
    bool is_counter;  // an eventfd to drain (a kick); a TAP fd stays readable until read
    bool operator==(const Watched&) const = default;
  };

  void Reset();

  int epoll_fd_ = -1;
  int wake_fd_;
  // Set when the control side woke us (ports changed): fds may have been closed and their
  // numbers reused, so the epoll set is rebuilt from scratch.
  bool reset_ = false;
  std::vector<Watched> watched_;  // registered in epoll_fd_, besides wake_fd_
  std::vector<Watched> wanted_;
  std::vector<int> notifying_;  // vids whose guest-Tx queue has notifications on
};

}  // namespace butterfly
