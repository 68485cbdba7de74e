# Installs the page's chart library (run by CMakeLists.txt as a build step):
#   cmake -DNPM=npm -DSOURCE=<this folder> -DNPM_DIR=<build folder> -DUI_DIR=<build>/ui -P vendor.cmake
# `npm ci` in NPM_DIR (package.json and package-lock.json copied there, so
# node_modules is never written into the source tree), then echarts'
# dist/echarts.min.js and its licence into UI_DIR/vendor. If npm fails (no
# registry, no cache) the build goes on with a warning and no vendor file:
# the page then says the chart library is missing, and the next build tries again.
file(MAKE_DIRECTORY "${NPM_DIR}" "${UI_DIR}/vendor")
file(COPY "${SOURCE}/package.json" "${SOURCE}/package-lock.json" DESTINATION "${NPM_DIR}")
execute_process(
  COMMAND "${NPM}" ci --no-audit --no-fund --loglevel=error --prefix "${NPM_DIR}"
  RESULT_VARIABLE rc)
set(dist "${NPM_DIR}/node_modules/echarts")
if(NOT rc EQUAL 0 OR NOT EXISTS "${dist}/dist/echarts.min.js")
  message(WARNING "garden ui: npm ci of echarts failed (${rc}); ${UI_DIR}/vendor/echarts.min.js "
                  "is not installed and the page cannot draw charts. Rebuild once the npm "
                  "registry (or npm's cache) is reachable.")
  return()
endif()
file(COPY_FILE "${dist}/LICENSE" "${UI_DIR}/vendor/echarts.LICENSE")
file(COPY_FILE "${dist}/dist/echarts.min.js" "${UI_DIR}/vendor/echarts.min.js")
# npm keeps the tarball's 1985 times: newer than the lock file, or the step runs every build.
file(TOUCH "${UI_DIR}/vendor/echarts.min.js")
