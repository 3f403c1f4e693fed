// Old location of the test HTTP client, kept only because tests/oip still
// includes it; the client is tests/testing/http_client.h
// (relu::test_http_client). Delete this file once tests/oip includes that
// header instead.
#pragma once

#include "tests/testing/http_client.h"

namespace relu::metrics::testing {

using ::relu::testing::HttpRequest;
using ::relu::testing::HttpResponse;

}  // namespace relu::metrics::testing
