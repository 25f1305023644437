# Runs at install time (cmake --install, DESTDIR staging for the packages), when the final prefix
# is known: --prefix /usr puts the configuration in /etc and the unit in /usr/lib/systemd/system,
# another prefix keeps both under it. Paths computed at configure time would keep the build's
# prefix (/usr/local) whatever --prefix says.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(SYSCONFDIR "/etc")
else()
  set(SYSCONFDIR "${CMAKE_INSTALL_PREFIX}/etc")
endif()
set(SBINDIR "${CMAKE_INSTALL_PREFIX}/sbin")
set(unit "${BUTTERFLY_PACKAGING_BINARY_DIR}/install/butterflyd.service")
configure_file("${BUTTERFLY_PACKAGING_SOURCE_DIR}/systemd/butterflyd.service.in" "${unit}" @ONLY)
file(INSTALL "${unit}" DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(INSTALL "${BUTTERFLY_PACKAGING_SOURCE_DIR}/butterfly.conf" DESTINATION "${SYSCONFDIR}/butterfly"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
