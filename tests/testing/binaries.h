// The paths of the lepton_server and lepton_client binaries of this build,
// for the tests and benchmarks that run them (with tests/testing/
// server_process.h and subprocess.h). CMake sets them on the target
// lepton_testing_binaries (tests/testing/CMakeLists.txt), which a program
// links to include this header.
#ifndef LEPTON_TESTS_TESTING_BINARIES_H_
#define LEPTON_TESTS_TESTING_BINARIES_H_

namespace lepton::testing {

inline constexpr char kServerPath[] = LEPTON_SERVER_PATH;
inline constexpr char kClientPath[] = LEPTON_CLIENT_PATH;

}  // namespace lepton::testing

#endif  // LEPTON_TESTS_TESTING_BINARIES_H_
