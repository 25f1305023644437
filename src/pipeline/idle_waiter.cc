#include "pipeline/idle_waiter.h"

#include <rte_vhost.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>

namespace butterfly {
namespace {

constexpr uint16_t kGuestTxQueue = 1;

}  // namespace

IdleWaiter::IdleWaiter(int wake_fd) : wake_fd_(wake_fd) { Reset(); }

IdleWaiter::~IdleWaiter() { close(epoll_fd_); }

void IdleWaiter::Reset() {
  if (epoll_fd_ >= 0) close(epoll_fd_);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event);
  watched_.clear();
  reset_ = false;
}

void IdleWaiter::Arm(const std::vector<VnicPort*>& vnics) {
  if (reset_) Reset();
  wanted_.clear();
  for (VnicPort* vnic : vnics) {
    if (vnic->type() == VnicType::kTap && vnic->tap_fd() >= 0) {
      wanted_.push_back({vnic->tap_fd(), false});
      continue;
    }
    int vid = vnic->vhost_vid();
    if (vid < 0) continue;
    rte_vhost_vring vring{};
    if (rte_vhost_get_vhost_vring(vid, kGuestTxQueue, &vring) != 0 || vring.kickfd < 0) continue;
    if (rte_vhost_enable_guest_notification(vid, kGuestTxQueue, 1) == 0) {
      notifying_.push_back(vid);
    }
    wanted_.push_back({vring.kickfd, true});
  }
  // Keep epoll's set equal to what is wanted (ports come and go, kick fds change on reconnect).
  for (const Watched& watched : watched_) {
    if (std::find(wanted_.begin(), wanted_.end(), watched) == wanted_.end()) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, watched.fd, nullptr);
    }
  }
  for (const Watched& wanted : wanted_) {
    if (std::find(watched_.begin(), watched_.end(), wanted) == watched_.end()) {
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.fd = wanted.fd;
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wanted.fd, &event);
    }
  }
  watched_ = wanted_;
}

void IdleWaiter::Wait(int timeout_ms) {
  epoll_event events[16];
  int n = epoll_wait(epoll_fd_, events, 16, timeout_ms);
  for (int i = 0; i < n; ++i) {
    int fd = events[i].data.fd;
    bool is_counter = fd == wake_fd_;
    for (const Watched& watched : watched_) {
      if (watched.fd == fd) is_counter = watched.is_counter;
    }
    uint64_t count;
    if (is_counter) (void)!read(fd, &count, sizeof(count));
    if (fd == wake_fd_) reset_ = true;
  }
}

void IdleWaiter::Disarm(const std::vector<VnicPort*>& vnics) {
  if (notifying_.empty()) return;
  for (VnicPort* vnic : vnics) {
    int vid = vnic->vhost_vid();  // -1 for TAP vnics and detached VMs
    if (vid >= 0 && std::find(notifying_.begin(), notifying_.end(), vid) != notifying_.end()) {
      rte_vhost_enable_guest_notification(vid, kGuestTxQueue, 0);
    }
  }
  notifying_.clear();
}

}  // namespace butterfly
