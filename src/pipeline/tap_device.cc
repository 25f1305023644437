#include "pipeline/tap_device.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace butterfly {

Result<int> CreateTapInterface(const std::string& name, const uint8_t* mac, unsigned mtu) {
  if (name.size() >= IFNAMSIZ) return Fail("tap name '" + name + "' is too long");
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Fail(std::string("cannot open /dev/net/tun: ") + std::strerror(errno));
  ifreq request{};
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  request.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (ioctl(fd, TUNSETIFF, &request) < 0) {
    std::string error = std::strerror(errno);
    close(fd);
    return Fail("cannot create tap interface '" + name + "': " + error +
                (errno == EBUSY ? " (an interface with that name exists)" : ""));
  }
  int control = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (control < 0) {
    close(fd);
    return Fail(std::string("cannot configure tap: ") + std::strerror(errno));
  }
  ifreq settings{};
  std::strncpy(settings.ifr_name, name.c_str(), IFNAMSIZ - 1);
  settings.ifr_hwaddr.sa_family = 1;  // ARPHRD_ETHER
  std::memcpy(settings.ifr_hwaddr.sa_data, mac, 6);
  bool ok = ioctl(control, SIOCSIFHWADDR, &settings) == 0;
  if (ok && mtu > 0) {
    settings.ifr_mtu = static_cast<int>(mtu);
    ok = ioctl(control, SIOCSIFMTU, &settings) == 0;
  }
  if (ok && ioctl(control, SIOCGIFFLAGS, &settings) == 0) {
    settings.ifr_flags |= IFF_UP;
    ok = ioctl(control, SIOCSIFFLAGS, &settings) == 0;
  }
  std::string error = std::strerror(errno);
  close(control);
  if (!ok) {
    close(fd);
    return Fail("cannot bring tap interface '" + name + "' up: " + error);
  }
  return fd;
}

}  // namespace butterfly
