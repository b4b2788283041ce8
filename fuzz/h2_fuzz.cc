// libFuzzer target for the proxy's HTTP/2 server side (h2c from any pod, h2 on the ingress):
// the client preface, then the fuzzer's bytes as frames, handed to a real proxy worker as if
// read from a connection; the client's end closes once the worker has answered (the server sees
// that at the next input). Routing runs against an
// empty configuration, so every request is answered by the proxy itself. Invariants: nothing
// crashes (ASan, UBSan), and the worker's loop keeps serving the next input.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "proxy/h2_conn.h"
#include "proxy/worker.h"

using namespace podium::proxy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ProxyState* state = new ProxyState();
  static Worker* worker = new Worker(*state, socket(AF_INET, SOCK_STREAM, 0));
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) return 0;
  std::string received(kH2Preface);
  received.append(reinterpret_cast<const char*>(data), size);
  EventLoop& loop = worker->loop();
  loop.post([&] {
    RequestSource from;
    from.ip = 0x0a2a0009;
    startH2Connection(*worker, Socket(sv[0]), received, from);
  });
  // Long enough for the posted start and the answers.
  loop.runFor(2);
  if (getenv("H2_FUZZ_DEBUG")) {
    char buf[65536];
    ssize_t n = read(sv[1], buf, sizeof buf);
    fprintf(stderr, "answered %zd bytes\n", n);
  }
  // The client goes away: the session reads its end and is gone before the next input, so no
  // session outlives the input that made it (libFuzzer would count it as that input's leak).
  close(sv[1]);
  loop.runFor(2);
  return 0;
}
