#include "pipeline/vnic_port.h"

#include <rte_vhost.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace butterfly {
namespace {

// vhost-user virtqueues of the first queue pair, as the VM sees them.
constexpr uint16_t kGuestRxQueue = 0;  // we enqueue here
constexpr uint16_t kGuestTxQueue = 1;  // we dequeue from here

uint16_t TapReceive(int fd, rte_mempool* pool, rte_mbuf** out, uint16_t max) {
  uint16_t n = 0;
  while (n < max) {
    rte_mbuf* mbuf = rte_pktmbuf_alloc(pool);
    if (!mbuf) break;
    ssize_t got = read(fd, rte_pktmbuf_mtod(mbuf, char*), rte_pktmbuf_tailroom(mbuf));
    if (got <= 0) {
      rte_pktmbuf_free(mbuf);
      break;
    }
    mbuf->data_len = static_cast<uint16_t>(got);
    mbuf->pkt_len = static_cast<uint32_t>(got);
    out[n++] = mbuf;
  }
  return n;
}

uint16_t TapTransmit(int fd, rte_mbuf** frames, uint16_t n) {
  uint16_t sent = 0;
  for (uint16_t i = 0; i < n; ++i) {
    iovec segments[16];
    int count = 0;
    for (rte_mbuf* seg = frames[i]; seg && count < 16; seg = seg->next) {
      segments[count++] = {rte_pktmbuf_mtod(seg, void*), seg->data_len};
    }
    if (writev(fd, segments, count) > 0) ++sent;
  }
  return sent;
}

}  // namespace

std::unique_ptr<VnicSettings> VnicSettings::From(const Vnic& vnic) {
  auto settings = std::make_unique<VnicSettings>();
  settings->vni = vnic.vni;
  std::copy(vnic.mac.bytes.begin(), vnic.mac.bytes.end(), settings->mac.begin());
  settings->ip_anti_spoof = vnic.ip_anti_spoof;
  settings->bypass_filtering = vnic.bypass_filtering;
  for (const IpAddress& ip : vnic.ips) {
    if (ip.is_v4()) {
      uint32_t address;
      std::memcpy(&address, ip.bytes.data(), 4);
      settings->ipv4.push_back(address);
    } else {
      settings->ipv6.push_back(ip.bytes);
    }
  }
  return settings;
}

bool VnicSettings::HasIpv4(uint32_t address) const {
  return std::find(ipv4.begin(), ipv4.end(), address) != ipv4.end();
}

bool VnicSettings::HasIpv6(const uint8_t* address) const {
  for (const auto& ip : ipv6) {
    if (std::memcmp(ip.data(), address, 16) == 0) return true;
  }
  return false;
}

VnicPort::VnicPort(const Vnic& vnic, uint32_t index, uint16_t owner, uint32_t max_workers,
                   FilterSlot* filter)
    : id_(vnic.id),
      type_(vnic.type),
      index_(index),
      owner_(owner),
      max_workers_(max_workers),
      filter_(filter),
      settings_(VnicSettings::From(vnic).release()),
      counters_(std::make_unique<VnicPortCounters[]>(max_workers)) {}

VnicPort::~VnicPort() {
  delete settings_.load();
  if (tap_fd_ >= 0) close(tap_fd_);
}

bool VnicPort::Ready() const {
  switch (type_) {
    case VnicType::kTap:
      return tap_fd_ >= 0;
    case VnicType::kVhostUserServer:
    case VnicType::kVhostUserClient:
      return vhost_vid() >= 0;
    case VnicType::kBench:
      return false;
  }
  return false;
}

uint16_t VnicPort::Receive(rte_mempool* pool, rte_mbuf** out, uint16_t max) {
  switch (type_) {
    case VnicType::kTap:
      return TapReceive(tap_fd_, pool, out, max);
    case VnicType::kVhostUserServer:
    case VnicType::kVhostUserClient: {
      int vid = vhost_vid();
      return vid < 0 ? 0 : rte_vhost_dequeue_burst(vid, kGuestTxQueue, pool, out, max);
    }
    case VnicType::kBench:
      return 0;
  }
  return 0;
}

uint16_t VnicPort::Transmit(rte_mbuf** frames, uint16_t n) {
  switch (type_) {
    case VnicType::kTap:
      return TapTransmit(tap_fd_, frames, n);
    case VnicType::kVhostUserServer:
    case VnicType::kVhostUserClient: {
      int vid = vhost_vid();
      return vid < 0 ? 0 : rte_vhost_enqueue_burst(vid, kGuestRxQueue, frames, n);
    }
    case VnicType::kBench:
      return 0;
  }
  return 0;
}

}  // namespace butterfly
