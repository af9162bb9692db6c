// compat.cc exercises what compat.c replaces: constructors and destructors
// run exactly once, a steady-clock condition-variable timeout, a thread,
// libstdc++'s atomic reference counts. Built by test-compat.sh.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

static int constructed = 0;
struct Global {
	Global() { std::printf("constructor %d\n", ++constructed); }
	~Global() { std::printf("destructor\n"); }
} global;

int main() {
	std::mutex m;
	std::condition_variable cv;
	std::unique_lock<std::mutex> lock(m);
	auto start = std::chrono::steady_clock::now();
	auto st = cv.wait_for(lock, std::chrono::milliseconds(20));
	auto waited = std::chrono::steady_clock::now() - start;
	auto shared = std::make_shared<std::string>("shared");
	std::thread t([shared] { std::printf("thread %s\n", shared->c_str()); });
	t.join();
	std::printf("main constructed=%d timeout=%d waited_enough=%d\n", constructed,
		st == std::cv_status::timeout, waited >= std::chrono::milliseconds(20));
	return 0;
}
