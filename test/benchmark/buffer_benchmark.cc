// Costs of the chained buffer's hot operations: small appends, slice moves
// between buffers (the proxy's forward step), drains, and socket round trips.
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "benchmark/benchmark.h"
#include "source/common/buffer/buffer.h"

namespace courier::buffer {
namespace {

void BM_AddSmall(benchmark::State& state) {
  const std::string chunk(static_cast<size_t>(state.range(0)), 'x');
  Buffer b;
  for (auto _ : state) {
    b.add(chunk);
    if (b.length() > (1 << 20)) b.drain(b.length());
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_AddSmall)->Arg(16)->Arg(256)->Arg(4096);

void BM_MoveSlices(benchmark::State& state) {
  const std::string chunk(static_cast<size_t>(state.range(0)), 'x');
  Buffer src, dst;
  for (auto _ : state) {
    src.add(chunk);
    dst.move(src);
    dst.drain(dst.length());
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_MoveSlices)->Arg(64)->Arg(16384)->Arg(65536);

void BM_SocketPairRoundTrip(benchmark::State& state) {
  int fds[2];
  socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds);
  const std::string chunk(static_cast<size_t>(state.range(0)), 'x');
  Buffer out, in;
  for (auto _ : state) {
    out.add(chunk);
    while (!out.empty()) {
      out.writeToFd(fds[0]);
      in.readFromFd(fds[1], 1 << 20);
    }
    while (in.length() < chunk.size()) in.readFromFd(fds[1], 1 << 20);
    in.drain(in.length());
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
  close(fds[0]);
  close(fds[1]);
}
BENCHMARK(BM_SocketPairRoundTrip)->Arg(1024)->Arg(65536);

}  // namespace
}  // namespace courier::buffer

BENCHMARK_MAIN();
