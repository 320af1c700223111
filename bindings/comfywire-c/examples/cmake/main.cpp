// The C++ wrapper (comfywire.hpp) on the same job as main.c: one workflow,
// progress from a callback, the outcome. usage: comfywire_example_cpp URL
#include <comfywire.hpp>

#include <chrono>
#include <iostream>

int main(int argc, char **argv) {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " URL\n";
        return 2;
    }
    try {
        auto client = comfywire::Client::connect_to(argv[1]);
        client.connect(std::chrono::seconds(10));
        client.subscribe("progress", [](const comfywire::EventView &event) {
            std::cout << "progress " << event.node().value_or("?") << ": " << event.value() << "/"
                      << event.max() << "\n";
        });
        auto outcome = client.run(R"({"1": {"class_type": "EmptyImage", "inputs": {}}})",
                                  std::chrono::seconds(60));
        std::cout << "outcome: " << outcome.status() << "\n";
        return 0;
    } catch (const comfywire::Error &e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}
