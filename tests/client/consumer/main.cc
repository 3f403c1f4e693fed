// Uses the installed relu::client: relu_client_consumer <target>.
// Prints the result of the README snippet; exits 0 only if it is right.
#include <relu/client.h>

#include <iostream>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: relu_client_consumer <target>\n";
    return 2;
  }
  relu::Client client(argv[1]);
  relu::ReluParams params;
  params.max_value = 2.0;
  absl::StatusOr<std::vector<float>> y =
      client.Apply(std::vector<float>{-5, -2, 0, 3}, params);
  if (!y.ok()) {
    std::cerr << "error: " << y.status() << "\n";
    return 1;
  }
  for (float v : *y) std::cout << v << " ";
  std::cout << "\n";
  absl::StatusOr<relu::ServingStatus> health = client.Health();
  std::cout << (health.ok() ? relu::ServingStatusName(*health) : "error")
            << "\n";
  return *y == std::vector<float>{0, 0, 0, 2} && health.ok() &&
                 *health == relu::ServingStatus::kServing
             ? 0
             : 1;
}
