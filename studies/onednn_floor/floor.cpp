// The floor of a fused INT8 octave layer on oneDNN 3.x: every convolution layer of a network
// run as oneDNN primitives in NHWC u8/s8, the octave ones in their fewest calls, with no
// other operator. run.py writes the layers (from octconv's own graphs) and reads the output.
//
// Usage: floor [--convolutions-only] [--per-layer] BATCH ROUNDS FILE...
// (one FILE per network; each line one layer:
//   name k stride pad chi cli coh col hh hl ph phl pll
// chi/cli: high/low input channels; coh/col: high/low output channels; hh/hl: the side of
// the high/low input maps; ph: the pooling factor of the high input read by high-to-high
// (1: none), phl: of the high input read by high-to-low, pll: of the low input read by
// low-to-low). Prints one JSON line per FILE: {"file", "batch", "ms", "min_ms", "calls",
// "macs_per_image"}: the median and the fastest of ROUNDS interleaved rounds (in each, every
// network runs once untimed, then timed, layer by layer); with --per-layer, then one line per
// layer: {"file", "layer", "ms"}, its median.
//
// A layer's calls: a pooling of the high input where high-to-high reads it pooled; the low
// output as ONE convolution over [high pooled | low (pooled)] (each pooling written straight
// into its channels of that input); low-to-high as a convolution at the low side, its nearest
// upsampling written into the high output; high-to-high with a sum post-op onto it and ReLU.
// --convolutions-only leaves the poolings and upsamplings out (what no fusion of them can
// save): the convolutions alone, as they run.
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <unordered_map>
#include <string>
#include <vector>

using namespace dnnl;
using dt = memory::data_type;
using Call = std::function<void()>;

static engine cpu(engine::kind::cpu, 0);
static stream queue(cpu);
static long long macs_per_image = 0;   // of the network being built
static bool convolutions_only = false;  // leave out the poolings and upsamplings

struct Layer {
  std::string name;
  int k, stride, pad, chi, cli, coh, col, hh, hl, ph, phl, pll;
};

// An NHWC u8 map of C channels; `view` is a channel slice of a wider map (strided rows).
static memory map_u8(memory::dim n, memory::dim c, memory::dim side) {
  return memory(memory::desc({n, c, side, side}, dt::u8, memory::format_tag::nhwc), cpu);
}
static memory view(const memory &wide, int first, int channels) {
  auto dims = wide.get_desc().get_dims();
  memory::dim c = dims[1], side = dims[2];
  memory::desc slice({dims[0], channels, side, side}, dt::u8,
                     memory::dims{side * side * c, 1, side * c, c});
  return memory(slice, cpu, static_cast<uint8_t *>(wide.get_data_handle()) + first);
}

static Call convolution(const memory &src, const memory &dst, int k, int stride, int pad,
                        bool sum, bool relu) {
  auto sd = src.get_desc(), dd = dst.get_desc();
  memory::dim ci = sd.get_dims()[1], co = dd.get_dims()[1], side = dd.get_dims()[2];
  macs_per_image += static_cast<long long>(ci) * co * k * k * side * side;
  memory::desc wd({co, ci, k, k}, dt::s8, memory::format_tag::any);
  memory::desc bd({co}, dt::f32, memory::format_tag::x);
  post_ops ops;
  if (sum) ops.append_sum(1.f);
  if (relu) ops.append_eltwise(algorithm::eltwise_relu, 0.f, 0.f);
  primitive_attr attr;
  attr.set_post_ops(ops);
  attr.set_scales_mask(DNNL_ARG_WEIGHTS, 0);
  convolution_forward::primitive_desc pd(
      cpu, prop_kind::forward_inference, algorithm::convolution_direct, sd, wd, bd, dd,
      {stride, stride}, {pad, pad}, {pad, pad}, attr);
  memory weights(pd.weights_desc(), cpu), bias(bd, cpu);
  std::memset(weights.get_data_handle(), 1, pd.weights_desc().get_size());
  std::memset(bias.get_data_handle(), 0, bd.get_size());
  memory scale(memory::desc({1}, dt::f32, memory::format_tag::x), cpu);
  *static_cast<float *>(scale.get_data_handle()) = 1e-3f;
  convolution_forward conv(pd);
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_BIAS, bias},
      {DNNL_ARG_DST, dst}, {DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS, scale}};
  return [conv, args]() { conv.execute(queue, args); };
}

// f x f average pooling of a u8 NHWC map into `dst` (dense or a channel slice): one
// parallel loop, as a fused layer would do it. A slice does not own its buffer: the map it
// slices is held by the convolution that reads it.
static Call pooling(const memory &src, const memory &dst, int f) {
  if (convolutions_only) return nullptr;
  auto dims = src.get_desc().get_dims();
  long n = dims[0], c = dims[1], side = dims[2], out = side / f;
  long row = dst.get_desc().get_strides()[2], pixel = dst.get_desc().get_strides()[3];
  return [=]() {   // holds src and dst: their buffers live as long as the call
    const uint8_t *in = static_cast<const uint8_t *>(src.get_data_handle());
    uint8_t *to = static_cast<uint8_t *>(dst.get_data_handle());
    const float inverse = 1.f / (f * f);
#pragma omp parallel
    {
      std::vector<uint16_t> sum(c);   // one pixel's sums, channels innermost (vectorized)
#pragma omp for collapse(2)
      for (long b = 0; b < n; ++b)
        for (long y = 0; y < out; ++y)
          for (long x = 0; x < out; ++x) {
            std::fill(sum.begin(), sum.end(), 0);
            for (int dy = 0; dy < f; ++dy)
              for (int dx = 0; dx < f; ++dx) {
                const uint8_t *p = in + ((b * side + y * f + dy) * side + x * f + dx) * c;
                for (long ch = 0; ch < c; ++ch) sum[ch] += p[ch];
              }
            uint8_t *o = to + b * out * row + y * row + x * pixel;
            for (long ch = 0; ch < c; ++ch)   // a multiplication: no division per element
              o[ch] = static_cast<uint8_t>(sum[ch] * inverse + 0.5f);
          }
    }
  };
}

static Call upsampling(const memory &src, const memory &dst) {
  if (convolutions_only) return nullptr;
  resampling_forward::primitive_desc pd(cpu, prop_kind::forward_inference,
                                        algorithm::resampling_nearest, src.get_desc(),
                                        dst.get_desc());
  resampling_forward up(pd);
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
  return [up, args]() { up.execute(queue, args); };
}

static void add_layer(const Layer &l, memory::dim n, std::vector<Call> &calls) {
  memory high = map_u8(n, l.chi, l.hh);
  int side = (l.hh + 2 * l.pad - l.k) / l.stride + 1;   // of h2h's input size after pooling
  memory h2h_in = high;
  if (l.ph > 1) {
    h2h_in = map_u8(n, l.chi, l.hh / l.ph);
    calls.push_back(pooling(high, h2h_in, l.ph));
    side = (l.hh / l.ph + 2 * l.pad - l.k) / l.stride + 1;
  }
  memory out_high = map_u8(n, l.coh, side);
  if (l.col > 0) {   // the low output: one convolution over [high pooled | low (pooled)]
    bool h2l_from_high = l.chi > 0 && l.phl > 0;
    int low_side = h2l_from_high ? l.hh / l.phl : l.hl / l.pll;
    int channels = (h2l_from_high ? l.chi : 0) + l.cli;
    memory cat = map_u8(n, channels, low_side);
    if (h2l_from_high) {   // from high-to-high's pooled input where that is on the way
      bool chained = l.ph > 1 && l.phl % l.ph == 0;
      calls.push_back(pooling(chained ? h2h_in : high, view(cat, 0, l.chi),
                              chained ? l.phl / l.ph : l.phl));
    }
    if (l.cli > 0 && l.pll > 1)
      calls.push_back(pooling(map_u8(n, l.cli, l.hl), view(cat, channels - l.cli, l.cli),
                              l.pll));
    memory out_low = map_u8(n, l.col, (low_side + 2 * l.pad - l.k) / l.stride + 1);
    calls.push_back(convolution(cat, out_low, l.k, l.stride, l.pad, false, true));
  }
  if (l.cli > 0 && l.coh > 0) {   // low-to-high, upsampled into the high output
    // (its input in a dense map of its own: a convolution over a channel slice of the
    // concatenated input could run a slower kernel than a fused layer would)
    memory low = map_u8(n, l.cli, l.hl);
    int low_side = (l.hl + 2 * l.pad - l.k) / l.stride + 1;
    if (low_side == side) {
      calls.push_back(convolution(low, out_high, l.k, l.stride, l.pad, false, false));
    } else {
      memory small = map_u8(n, l.coh, low_side);
      calls.push_back(convolution(low, small, l.k, l.stride, l.pad, false, false));
      calls.push_back(upsampling(small, out_high));
    }
  }
  if (l.chi > 0 && l.coh > 0)
    calls.push_back(convolution(h2h_in, out_high, l.k, l.stride, l.pad, l.cli > 0, true));
}

static std::vector<Layer> read_layers(const std::string &path) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::exit(2);
  }
  std::vector<Layer> layers;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    Layer l;
    if (!(fields >> l.name >> l.k >> l.stride >> l.pad >> l.chi >> l.cli >> l.coh >> l.col >>
          l.hh >> l.hl >> l.ph >> l.phl >> l.pll)) {
      std::fprintf(stderr, "%s: a line is not a layer: %s\n", path.c_str(), line.c_str());
      std::exit(2);
    }
    layers.push_back(l);
  }
  return layers;
}

static double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

int main(int argc, char **argv) {
  bool per_layer = false;
  for (; argc > 1 && argv[1][0] == '-' && argv[1][1] == '-'; ++argv, --argc) {
    std::string flag = argv[1];
    if (flag == "--convolutions-only") {
      convolutions_only = true;
    } else if (flag == "--per-layer") {
      per_layer = true;
    } else {
      std::fprintf(stderr, "floor: unknown flag %s\n", argv[1]);
      return 2;
    }
  }
  if (argc < 4) {
    std::fprintf(stderr, "usage: floor [--convolutions-only] [--per-layer] BATCH ROUNDS "
                         "FILE...\n");
    return 2;
  }
  memory::dim batch = std::atoi(argv[1]);
  int rounds = std::atoi(argv[2]);
  struct Network {
    std::vector<std::string> names;           // a layer's name
    std::vector<std::vector<Call>> layers;    // its calls
    std::vector<std::vector<double>> times;   // its time in each timed round (ms)
    std::vector<double> totals;               // the network's time in each timed round
    long long macs = 0;
    size_t calls = 0;
  };
  std::vector<Network> networks;
  for (int i = 3; i < argc; ++i) {
    Network net;
    macs_per_image = 0;
    for (const Layer &l : read_layers(argv[i])) {
      std::vector<Call> calls;
      add_layer(l, batch, calls);
      calls.erase(std::remove(calls.begin(), calls.end(), nullptr), calls.end());
      net.calls += calls.size();
      net.names.push_back(l.name);
      net.layers.push_back(calls);
    }
    net.times.resize(net.layers.size());
    net.macs = macs_per_image;
    networks.push_back(std::move(net));
  }
  using clock = std::chrono::steady_clock;
  for (int round = 0; round < rounds + 2; ++round)   // two rounds of warm-up
    for (Network &net : networks) {
      for (auto &calls : net.layers)
        for (auto &call : calls) call();
      queue.wait();
      double total = 0;
      for (size_t l = 0; l < net.layers.size(); ++l) {
        auto start = clock::now();
        for (auto &call : net.layers[l]) call();
        queue.wait();
        std::chrono::duration<double, std::milli> took = clock::now() - start;
        total += took.count();
        if (round >= 2) net.times[l].push_back(took.count());
      }
      if (round >= 2) net.totals.push_back(total);
    }
  for (size_t i = 0; i < networks.size(); ++i) {
    const Network &net = networks[i];
    std::printf("{\"file\": \"%s\", \"batch\": %ld, \"ms\": %.4f, \"min_ms\": %.4f, "
                "\"calls\": %zu, \"macs_per_image\": %lld}\n", argv[i + 3],
                static_cast<long>(batch), median(net.totals),
                *std::min_element(net.totals.begin(), net.totals.end()), net.calls, net.macs);
    for (size_t l = 0; per_layer && l < net.layers.size(); ++l)
      std::printf("{\"file\": \"%s\", \"layer\": \"%s\", \"ms\": %.4f}\n", argv[i + 3],
                  net.names[l].c_str(), median(net.times[l]));
  }
  return 0;
}
