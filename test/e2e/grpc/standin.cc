// A small gRPC server over h2c (cleartext HTTP/2, nghttp2) for the mesh tests, with no
// protobuf: messages are raw bytes in gRPC's length-prefixed framing.
//   /echo.Echo/Say      unary: answers "<APP_VERSION>:<request>"
//   /echo.Echo/Stream   server streaming: three answers "<APP_VERSION>:<request>:<i>"
//   /echo.Echo/Fail     trailers-only answer with grpc-status 9 (FAILED_PRECONDITION)
//   anything else       grpc-status 12 (UNIMPLEMENTED); a non-gRPC GET gets a text answer
// Listens on PORT (default 50051), one thread per connection.
// `echo call IP:PORT METHOD MESSAGE` is a client instead: one unary call over h2c, printing the
// answer's message and its grpc-status.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string version() {
  const char* v = std::getenv("APP_VERSION");
  return v ? v : "v0";
}

struct Stream {
  std::string path, contentType, body, out;
  std::vector<std::pair<std::string, std::string>> trailers;
};

struct Conn {
  int fd;
  nghttp2_session* session = nullptr;
  std::map<int32_t, std::unique_ptr<Stream>> streams;
};

std::string frame(const std::string& msg) {
  std::string f(5, '\0');
  uint32_t n = htonl(static_cast<uint32_t>(msg.size()));
  memcpy(&f[1], &n, 4);
  return f + msg;
}

nghttp2_nv nv(const std::string& k, const std::string& v) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(k.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), k.size(), v.size(),
          NGHTTP2_NV_FLAG_NONE};
}

ssize_t readOut(nghttp2_session* s, int32_t id, uint8_t* buf, size_t len, uint32_t* flags,
                nghttp2_data_source* src, void*) {
  auto* st = static_cast<Stream*>(src->ptr);
  size_t n = std::min(len, st->out.size());
  memcpy(buf, st->out.data(), n);
  st->out.erase(0, n);
  if (st->out.empty()) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!st->trailers.empty()) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      std::vector<nghttp2_nv> t;
      for (const auto& [k, v] : st->trailers) t.push_back(nv(k, v));
      nghttp2_submit_trailer(s, id, t.data(), t.size());
    }
  }
  return static_cast<ssize_t>(n);
}

void respond(nghttp2_session* s, int32_t id, Stream* st) {
  static const std::string kStatus = ":status", k200 = "200", kType = "content-type",
                           kGrpc = "application/grpc", kText = "text/plain";
  if (st->contentType.rfind("application/grpc", 0) != 0) {
    st->out = "h2 hello from " + version() + " " + st->path + "\n";
    nghttp2_nv h[] = {nv(kStatus, k200), nv(kType, kText)};
    nghttp2_data_provider p{{.ptr = st}, readOut};
    nghttp2_submit_response(s, id, h, 2, &p);
    return;
  }
  std::string msg = st->body.size() >= 5 ? st->body.substr(5) : "";
  std::string status = "0";
  if (st->path == "/echo.Echo/Say") {
    st->out = frame(version() + ":" + msg);
  } else if (st->path == "/echo.Echo/Stream") {
    for (int i = 0; i < 3; ++i) st->out += frame(version() + ":" + msg + ":" + std::to_string(i));
  } else {
    status = st->path == "/echo.Echo/Fail" ? "9" : "12";
  }
  if (status != "0") {  // trailers-only
    static const std::string kGs = "grpc-status", kGm = "grpc-message";
    std::string message = status == "9" ? "failing as asked" : "unknown method " + st->path;
    nghttp2_nv h[] = {nv(kStatus, k200), nv(kType, kGrpc), nv(kGs, status), nv(kGm, message)};
    nghttp2_submit_response(s, id, h, 4, nullptr);
    return;
  }
  st->trailers = {{"grpc-status", "0"}, {"x-served-by", version()}};
  nghttp2_nv h[] = {nv(kStatus, k200), nv(kType, kGrpc)};
  nghttp2_data_provider p{{.ptr = st}, readOut};
  nghttp2_submit_response(s, id, h, 2, &p);
}

int onBegin(nghttp2_session* s, const nghttp2_frame* f, void* ud) {
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto* c = static_cast<Conn*>(ud);
  auto st = std::make_unique<Stream>();
  nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st.get());
  c->streams[f->hd.stream_id] = std::move(st);
  return 0;
}

int onHeader(nghttp2_session* s, const nghttp2_frame* f, const uint8_t* n, size_t nl,
             const uint8_t* v, size_t vl, uint8_t, void*) {
  auto* st = static_cast<Stream*>(nghttp2_session_get_stream_user_data(s, f->hd.stream_id));
  if (!st) return 0;
  std::string name(reinterpret_cast<const char*>(n), nl);
  std::string value(reinterpret_cast<const char*>(v), vl);
  if (name == ":path") st->path = value;
  if (name == "content-type") st->contentType = value;
  return 0;
}

int onData(nghttp2_session* s, uint8_t, int32_t id, const uint8_t* d, size_t len, void*) {
  auto* st = static_cast<Stream*>(nghttp2_session_get_stream_user_data(s, id));
  if (st) st->body.append(reinterpret_cast<const char*>(d), len);
  return 0;
}

int onFrame(nghttp2_session* s, const nghttp2_frame* f, void*) {
  if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
  if (f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS) return 0;
  auto* st = static_cast<Stream*>(nghttp2_session_get_stream_user_data(s, f->hd.stream_id));
  if (st) respond(s, f->hd.stream_id, st);
  return 0;
}

int onClose(nghttp2_session*, int32_t id, uint32_t, void* ud) {
  static_cast<Conn*>(ud)->streams.erase(id);
  return 0;
}

ssize_t onSend(nghttp2_session*, const uint8_t* data, size_t len, int, void* ud) {
  ssize_t n = write(static_cast<Conn*>(ud)->fd, data, len);
  return n < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : n;
}

void serve(int fd) {
  Conn c{fd};
  nghttp2_session_callbacks* cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_send_callback(cb, onSend);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, onBegin);
  nghttp2_session_callbacks_set_on_header_callback(cb, onHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, onData);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, onFrame);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, onClose);
  nghttp2_session_server_new(&c.session, cb, &c);
  nghttp2_session_callbacks_del(cb);
  nghttp2_submit_settings(c.session, NGHTTP2_FLAG_NONE, nullptr, 0);
  nghttp2_session_send(c.session);
  char buf[16384];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    if (nghttp2_session_mem_recv(c.session, reinterpret_cast<uint8_t*>(buf),
                                 static_cast<size_t>(n)) < 0)
      break;
    if (nghttp2_session_send(c.session) != 0) break;
  }
  nghttp2_session_del(c.session);
  close(fd);
}

// --- the client ----------------------------------------------------------------------------

struct Call {
  int fd;
  std::string body, status;
  bool done = false;
};

int callHeader(nghttp2_session*, const nghttp2_frame*, const uint8_t* n, size_t nl,
               const uint8_t* v, size_t vl, uint8_t, void* ud) {
  if (std::string(reinterpret_cast<const char*>(n), nl) == "grpc-status")
    static_cast<Call*>(ud)->status.assign(reinterpret_cast<const char*>(v), vl);
  return 0;
}

int callData(nghttp2_session*, uint8_t, int32_t, const uint8_t* d, size_t len, void* ud) {
  static_cast<Call*>(ud)->body.append(reinterpret_cast<const char*>(d), len);
  return 0;
}

int callClose(nghttp2_session*, int32_t, uint32_t, void* ud) {
  static_cast<Call*>(ud)->done = true;
  return 0;
}

ssize_t callSend(nghttp2_session*, const uint8_t* data, size_t len, int, void* ud) {
  ssize_t n = write(static_cast<Call*>(ud)->fd, data, len);
  return n < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : n;
}

int call(const std::string& target, const std::string& method, const std::string& message) {
  auto colon = target.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(target.c_str() + colon + 1)));
  inet_pton(AF_INET, target.substr(0, colon).c_str(), &a.sin_addr);
  Call c{socket(AF_INET, SOCK_STREAM, 0)};
  if (connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return perror("connect"), 1;
  nghttp2_session_callbacks* cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_send_callback(cb, callSend);
  nghttp2_session_callbacks_set_on_header_callback(cb, callHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, callData);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, callClose);
  nghttp2_session* s;
  nghttp2_session_client_new(&s, cb, &c);
  nghttp2_session_callbacks_del(cb);
  nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, nullptr, 0);
  Stream req;
  req.out = frame(message);
  const std::string m = ":method", post = "POST", sch = ":scheme", http = "http", p = ":path",
                    au = ":authority", ct = "content-type", grpc = "application/grpc", te = "te",
                    trailers = "trailers";
  nghttp2_nv h[] = {nv(m, post),    nv(sch, http), nv(p, method),
                    nv(au, target), nv(ct, grpc),  nv(te, trailers)};
  nghttp2_data_provider prd{{.ptr = &req}, readOut};
  nghttp2_submit_request(s, nullptr, h, 6, &prd, nullptr);
  nghttp2_session_send(s);
  char buf[16384];
  while (!c.done) {
    ssize_t n = read(c.fd, buf, sizeof buf);
    if (n <= 0) break;
    if (nghttp2_session_mem_recv(s, reinterpret_cast<uint8_t*>(buf), static_cast<size_t>(n)) < 0)
      break;
    nghttp2_session_send(s);
  }
  nghttp2_session_del(s);
  close(c.fd);
  std::cout << (c.body.size() >= 5 ? c.body.substr(5) : "") << " grpc-status=" << c.status
            << std::endl;
  return c.done ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "call") return call(argv[2], argv[3], argv[4]);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, [](int) { _exit(0); });
  int port = std::getenv("PORT") ? std::atoi(std::getenv("PORT")) : 50051;
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(ls, 128) != 0) {
    perror("listen");
    return 1;
  }
  std::cout << "grpc stand-in " << version() << " on :" << port << std::endl;
  for (;;) {
    int fd = accept(ls, nullptr, nullptr);
    if (fd >= 0) std::thread(serve, fd).detach();
  }
}
