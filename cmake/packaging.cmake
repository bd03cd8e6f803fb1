# Install rules and Debian packages: `cpack -G DEB` in the build folder writes
#   suanli-agent_<version>_<arch>.deb       the agent (install component "agent")
#   suanli-aggregator_<version>_<arch>.deb  the aggregator (install component "aggregator")
# Each holds its binary (/usr/bin), its systemd unit (/lib/systemd/system), its example
# configuration as conffiles in /etc/suanli, a man page, copyright and changelog, and maintainer
# scripts (deploy/debian/) that create the suanli user and the state folder under
# /var/lib/suanli. See docs/packages.md.
#
# lintian (tests/package fails on any error) reports no error and no warning on either package
# (lintian 2.116, Debian 12). Its info-level tags, left as they are:
#   hardening-no-bindnow, hardening-no-fortify-functions: the project's compile and link flags
#     (top-level CMakeLists.txt) have no -z now and no -D_FORTIFY_SOURCE=2, which a debhelper
#     build would take from dpkg-buildflags;
#   binary-has-unneeded-section .comment: CPack strips with plain `strip` (dh_strip would also
#     remove .comment; it holds the compiler's version string only);
#   package-supports-alternative-init-but-no-init.d-script: systemd units only, by choice;
#   spelling-error-in-binary: false positives, fragments that `strings` cuts from longer text
#     or from code bytes ("defaul" out of "<embedded default>", "lengH", "ment").

include(GNUInstallDirs)

set(SUANLI_DEB_DIR ${CMAKE_SOURCE_DIR}/deploy/debian)
set(SUANLI_DEB_GEN ${CMAKE_BINARY_DIR}/debian)
set(SUANLI_PACKAGE_MAINTAINER "Suanli maintainers <suanli@example.org>" CACHE STRING
    "Maintainer field of the Debian packages (and their changelog)")

# component -> package name, binary, configuration files it owns, its state folder.
set(SUANLI_PKG_agent suanli-agent)
set(SUANLI_CONF_agent agent.yml)
set(SUANLI_STATE_agent /var/lib/suanli/agent)
set(SUANLI_PKG_aggregator suanli-aggregator)
set(SUANLI_CONF_aggregator aggregator.yml web.yml)
set(SUANLI_STATE_aggregator /var/lib/suanli/aggregator)

# The changelog of this native package, "Sat, 05 Dec 2026 10:00:00 +0000" style date from the
# changelog source itself, so the package is reproducible.
file(READ ${SUANLI_DEB_DIR}/changelog SUANLI_CHANGELOG)
string(REGEX MATCH "^suanli \\(([^)]+)\\)" _ "${SUANLI_CHANGELOG}")
if(NOT CMAKE_MATCH_1 STREQUAL PROJECT_VERSION)
  message(WARNING "deploy/debian/changelog's latest entry is ${CMAKE_MATCH_1}, the project is "
                  "${PROJECT_VERSION}: add an entry before packaging")
endif()

# gzip -9n FILE into OUT at configure time (-n: no name or time stamp, so the bytes depend on
# the content only).
function(suanli_gzip in out)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${in})
  get_filename_component(dir ${out} DIRECTORY)
  file(MAKE_DIRECTORY ${dir})
  execute_process(COMMAND gzip -9n -c ${in} OUTPUT_FILE ${out} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gzip -9n ${in} failed")
  endif()
endfunction()

foreach(comp agent aggregator)
  set(pkg ${SUANLI_PKG_${comp}})
  set(gen ${SUANLI_DEB_GEN}/${pkg})
  string(TOUPPER ${comp} COMP)

  install(TARGETS ${pkg} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT ${comp})
  install(FILES ${CMAKE_SOURCE_DIR}/deploy/${pkg}.service
          DESTINATION /lib/systemd/system COMPONENT ${comp})

  # Configuration: deploy/NAME.example.yml installed as /etc/suanli/NAME.yml, a conffile.
  set(conffiles "")
  foreach(conf IN LISTS SUANLI_CONF_${comp})
    string(REGEX REPLACE "\\.yml$" ".example.yml" example ${conf})
    install(FILES ${CMAKE_SOURCE_DIR}/deploy/${example} DESTINATION /etc/suanli
            RENAME ${conf} COMPONENT ${comp})
    string(APPEND conffiles "/etc/suanli/${conf}\n")
  endforeach()
  file(WRITE ${gen}/conffiles "${conffiles}")

  # Maintainer scripts: one template each, filled in per package.
  set(SUANLI_PACKAGE ${pkg})
  set(SUANLI_UNIT ${pkg}.service)
  set(SUANLI_STATE_DIR ${SUANLI_STATE_${comp}})
  list(TRANSFORM SUANLI_CONF_${comp} PREPEND /etc/suanli/ OUTPUT_VARIABLE SUANLI_CONFFILES)
  list(JOIN SUANLI_CONFFILES " " SUANLI_CONFFILES)
  foreach(script postinst prerm postrm)
    configure_file(${SUANLI_DEB_DIR}/${script}.in ${gen}/${script} @ONLY
                   FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
                                    GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  endforeach()

  # /usr/share/doc/PKG: copyright, changelog.gz; the man page.
  install(FILES ${SUANLI_DEB_DIR}/copyright
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${pkg} COMPONENT ${comp})
  suanli_gzip(${SUANLI_DEB_DIR}/changelog ${gen}/changelog.gz)
  install(FILES ${gen}/changelog.gz
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${pkg} COMPONENT ${comp})
  configure_file(${SUANLI_DEB_DIR}/${pkg}.1.in ${gen}/${pkg}.1 @ONLY)
  suanli_gzip(${gen}/${pkg}.1 ${gen}/${pkg}.1.gz)
  install(FILES ${gen}/${pkg}.1.gz
          DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT ${comp})

  set(CPACK_DEBIAN_${COMP}_PACKAGE_NAME ${pkg})
  set(CPACK_DEBIAN_${COMP}_FILE_NAME DEB-DEFAULT)
  set(CPACK_DEBIAN_${COMP}_PACKAGE_CONTROL_EXTRA
      "${gen}/conffiles;${gen}/postinst;${gen}/prerm;${gen}/postrm")
  set(CPACK_DEBIAN_${COMP}_PACKAGE_CONTROL_STRICT_PERMISSION ON)
endforeach()

# suanlictl, the operator's tool, goes with the aggregator, with its man page.
install(TARGETS suanlictl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT aggregator)
configure_file(${SUANLI_DEB_DIR}/suanlictl.1.in ${SUANLI_DEB_GEN}/suanlictl.1 @ONLY)
suanli_gzip(${SUANLI_DEB_GEN}/suanlictl.1 ${SUANLI_DEB_GEN}/suanlictl.1.gz)
install(FILES ${SUANLI_DEB_GEN}/suanlictl.1.gz
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT aggregator)

# install and cpack take the binaries as they are built, without building every target of the
# folder first (a test build holds far more than the packages contain; build
# suanli-agent, suanli-aggregator and suanlictl, then run cpack).
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME suanli)
set(CPACK_PACKAGE_VENDOR "Suanli")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL agent aggregator)
set(CPACK_COMPONENTS_GROUPING IGNORE)

set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${SUANLI_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies from dpkg-shlibdeps over the installed binaries; the maintainer scripts
# call adduser (init-system-helpers, with deb-systemd-helper, is Essential).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
# The agent loads libcurl.so.4 (https:// endpoints, Redfish), libssl.so.3 (TLS) and
# libcrypt.so.1 (basic auth) with dlopen when first needed (agent/lazy_*.cc), which
# dpkg-shlibdeps cannot see; the versions are those it computes for the aggregator, which links
# the same libraries. libnetsnmp.so.40 (router links) is loaded the same way
# (agent/collectors/network/snmp_client.cc); 5.9 is the version whose headers it is built with.
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS
    "adduser, libcurl4 (>= 7.16.2), libssl3 (>= 3.0.0), libcrypt1 (>= 1:4.1.0), libsnmp40 (>= 5.9)")

set(CPACK_DEBIAN_AGENT_DESCRIPTION
"Suanli agent: server utilization, network and power telemetry
suanli-agent runs on every server of the alliance's data centers. It samples
CPU, memory, load, pressure, network interfaces and power, with
node_exporter's metric names, serves them on /metrics and pushes every sweep
by Prometheus remote_write to a suanli-aggregator, spooling sweeps on disk
while the aggregator cannot be reached.")
set(CPACK_DEBIAN_AGGREGATOR_DESCRIPTION
"Suanli aggregator: remote_write store and capacity view
suanli-aggregator runs per data center or region. It receives Prometheus
remote_write from suanli-agent, makes every sample durable in RocksDB before
acknowledging it, derives the compute capacity of each data center and
region, and serves it on /metrics for Prometheus and as JSON for schedulers.")

include(CPack)
