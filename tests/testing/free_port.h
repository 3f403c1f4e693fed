// A loopback TCP port for tests that must name one before something binds it.
#pragma once

namespace relu::testing {

// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then
// closed): nothing listens on it, but another process may take it at any
// time, so a caller that binds it must be ready to retry. -1 on error.
int PickFreePort();

}  // namespace relu::testing
