// The floor of a fused INT8 octave layer on oneDNN 3.x: every convolution layer of a network
// run as oneDNN primitives in NHWC u8/s8, the octave ones in their fewest calls, with no
// other operator. run.py writes the layers (from octconv's own graphs) and reads the output.
//
// Usage: floor [--convolutions-only] [--per-layer] BATCH ROUNDS FILE[@A,B...]...
// (one FILE per network, @ the arrangements its layers may take; each line one layer:
//   name k stride pad chi cli coh col hh hl ph phl pll
// chi/cli: high/low input channels; coh/col: high/low output channels; hh/hl: the side of
// the high/low input maps; ph: the pooling factor of the high input read by high-to-high
// (1: none), phl: of the high input read by high-to-low, pll: of the low input read by
// low-to-low). Prints one JSON line per FILE: {"file", "allowed", "batch", "ms", "min_ms",
// "calls", "macs_per_image", "arrangements"}: the median and the fastest of ROUNDS rounds
// (in each, every layer runs once in each network in turn, timed, so that a change in the
// machine's speed falls on all of them alike; the networks have the same layers), the
// multiply-adds its convolutions run, and how many layers run in each arrangement; with
// --per-layer, then one line per layer: {"file", "allowed", "layer", "arrangement", "ms"},
// its median.
//
// The arrangements of an octave layer's calls (after a FILE's @, those its layers may take,
// default split; where several apply to a layer, each is timed in rounds of its own before
// the networks' and the fastest is kept, as a fused layer would choose when it is built):
// - split: a pooling of the high input where high-to-high reads it pooled; the low output as
//   ONE convolution over [high pooled | low (pooled)] (each pooling written straight into its
//   channels of that input); low-to-high as a convolution at the low side, its nearest
//   upsampling written into the high output; high-to-high with a sum post-op onto it and
//   ReLU. Its multiply-adds are the octave layer's own.
// - stacked: low-to-high joins the low output's convolution, which writes [low | low-to-high]
//   from [high pooled | low] (its weights from the pooled high input to low-to-high are
//   zeros, multiply-adds run for nothing; ReLU on the low part only, a per-channel maximum),
//   then the same upsampling and high-to-high: two convolutions for three. Where both
//   outputs are upsampled from the same low side.
// - wide: in a 1x1 layer, the high output as ONE convolution over [high | low upsampled]
//   (nearest upsampling commutes with a 1x1 convolution: low-to-high runs at the high side,
//   four times its multiply-adds), the low output as in split. Where the high input is not
//   pooled and the low side is half the high side.
// --convolutions-only leaves the poolings and upsamplings out (what no fusion of them can
// save): the convolutions alone, as they run.
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cfloat>
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
static long long macs_per_image = 0;   // of the convolutions built so far, per image
static bool convolutions_only = false;  // leave out the poolings and upsamplings

struct Layer {
  std::string name;
  int k, stride, pad, chi, cli, coh, col, hh, hl, ph, phl, pll;
  int side(int input) const { return (input + 2 * pad - k) / stride + 1; }
};

enum Arrangement { SPLIT, STACKED, WIDE, ARRANGEMENTS };
static const char *const ARRANGEMENT_NAMES[ARRANGEMENTS] = {"split", "stacked", "wide"};

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

// A convolution of `src` into `dst`; `sum`: added onto what `dst` holds (a sum post-op);
// ReLU on the first `relu` output channels (all: an eltwise post-op; fewer: a per-channel
// maximum with 0 there and -FLT_MAX after).
static Call convolution(const memory &src, const memory &dst, int k, int stride, int pad,
                        bool sum, int relu) {
  auto sd = src.get_desc(), dd = dst.get_desc();
  memory::dim ci = sd.get_dims()[1], co = dd.get_dims()[1], side = dd.get_dims()[2];
  macs_per_image += static_cast<long long>(ci) * co * k * k * side * side;
  memory::desc wd({co, ci, k, k}, dt::s8, memory::format_tag::any);
  memory::desc bd({co}, dt::f32, memory::format_tag::x);
  memory::desc floor_desc({1, co, 1, 1}, dt::f32, memory::format_tag::abcd);
  post_ops ops;
  if (sum) ops.append_sum(1.f);
  if (relu == co) ops.append_eltwise(algorithm::eltwise_relu, 0.f, 0.f);
  if (relu > 0 && relu < co) ops.append_binary(algorithm::binary_max, floor_desc);
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
  if (relu > 0 && relu < co) {
    memory floor(floor_desc, cpu);
    float *values = static_cast<float *>(floor.get_data_handle());
    for (memory::dim c = 0; c < co; ++c) values[c] = c < relu ? 0.f : -FLT_MAX;
    args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(sum ? 1 : 0) | DNNL_ARG_SRC_1] = floor;
  }
  return [conv, args]() { conv.execute(queue, args); };
}

// f x f average pooling of a u8 NHWC map (dense or a channel slice) into `dst` (the same):
// one parallel loop, as a fused layer would do it. A slice does not own its buffer: the map
// it slices is held by the convolution that reads or writes it.
static Call pooling(const memory &src, const memory &dst, int f) {
  if (convolutions_only) return nullptr;
  auto sd = src.get_desc(), dd = dst.get_desc();
  long n = sd.get_dims()[0], c = sd.get_dims()[1], out = sd.get_dims()[2] / f;
  auto from = sd.get_strides(), to_strides = dd.get_strides();
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
                const uint8_t *p = in + b * from[0] + (y * f + dy) * from[2] +
                                   (x * f + dx) * from[3];
                for (long ch = 0; ch < c; ++ch) sum[ch] += p[ch];
              }
            uint8_t *o = to + b * to_strides[0] + y * to_strides[2] + x * to_strides[3];
            for (long ch = 0; ch < c; ++ch)   // a multiplication: no division per element
              o[ch] = static_cast<uint8_t>(sum[ch] * inverse + 0.5f);
          }
    }
  };
}

// Nearest upsampling of a u8 NHWC map (dense or a channel slice) into `dst` (the same), by
// the ratio of their sides: a copy of each pixel's channels, one parallel loop.
static Call upsampling(const memory &src, const memory &dst) {
  if (convolutions_only) return nullptr;
  auto sd = src.get_desc(), dd = dst.get_desc();
  long n = dd.get_dims()[0], c = dd.get_dims()[1], side = dd.get_dims()[2];
  long f = side / sd.get_dims()[2];
  auto from = sd.get_strides(), to_strides = dd.get_strides();
  return [=]() {
    const uint8_t *in = static_cast<const uint8_t *>(src.get_data_handle());
    uint8_t *to = static_cast<uint8_t *>(dst.get_data_handle());
#pragma omp parallel for collapse(2)
    for (long b = 0; b < n; ++b)
      for (long y = 0; y < side; ++y)
        for (long x = 0; x < side; ++x)
          std::memcpy(to + b * to_strides[0] + y * to_strides[2] + x * to_strides[3],
                      in + b * from[0] + (y / f) * from[2] + (x / f) * from[3], c);
  };
}

// The side of the high output, and of the low output, of layer `l`.
static int high_side(const Layer &l) { return l.side(l.ph > 1 ? l.hh / l.ph : l.hh); }
static bool h2l_from_high(const Layer &l) { return l.chi > 0 && l.phl > 0; }
static int low_input_side(const Layer &l) {
  return h2l_from_high(l) ? l.hh / l.phl : l.hl / l.pll;
}

static bool applies(Arrangement a, const Layer &l) {
  bool octave = l.chi > 0 && l.cli > 0 && l.coh > 0;
  switch (a) {
    case SPLIT:
      return true;
    case STACKED:   // low-to-high reads the low input as low-to-low does, and is upsampled
      return octave && l.col > 0 && h2l_from_high(l) && l.pll == 1 &&
             low_input_side(l) == l.hl && 2 * l.side(l.hl) == high_side(l);
    case WIDE:
      return octave && l.k == 1 && l.stride == 1 && l.pad == 0 && l.ph == 1 &&
             2 * l.hl == l.hh;
    default:
      return false;
  }
}

// Layer `l` in arrangement `a` (see the top of this file), at batch `n`: its calls.
static std::vector<Call> build(Arrangement a, const Layer &l, memory::dim n) {
  std::vector<Call> calls;
  bool wide = a == WIDE, stacked = a == STACKED;
  // the high input; in the wide arrangement, the first channels of [high | low upsampled]
  memory joined = map_u8(n, l.chi + (wide ? l.cli : 0), l.hh);
  memory high = wide ? view(joined, 0, l.chi) : joined;
  memory h2h_in = high;
  if (l.ph > 1) {
    h2h_in = map_u8(n, l.chi, l.hh / l.ph);
    calls.push_back(pooling(high, h2h_in, l.ph));
  }
  memory out_high = map_u8(n, l.coh, high_side(l));
  // the low input in a dense map of its own where a convolution reads it alone (one over a
  // channel slice of the joined input could run a slower kernel than a fused layer would)
  memory low = map_u8(n, l.cli, l.hl);
  if (l.col > 0) {   // the low output: one convolution over [high pooled | low (pooled)]
    int channels = (h2l_from_high(l) ? l.chi : 0) + l.cli;
    memory cat = map_u8(n, channels, low_input_side(l));
    if (h2l_from_high(l)) {   // from high-to-high's pooled input where that is on the way
      bool chained = l.ph > 1 && l.phl % l.ph == 0;
      calls.push_back(pooling(chained ? h2h_in : high, view(cat, 0, l.chi),
                              chained ? l.phl / l.ph : l.phl));
    }
    if (l.cli > 0 && l.pll > 1)
      calls.push_back(pooling(low, view(cat, channels - l.cli, l.cli), l.pll));
    int side = l.side(low_input_side(l));
    if (stacked) {   // [low | low-to-high], the second part upsampled into the high output
      memory both = map_u8(n, l.col + l.coh, side);
      calls.push_back(convolution(cat, both, l.k, l.stride, l.pad, false, l.col));
      calls.push_back(upsampling(view(both, l.col, l.coh), out_high));
    } else {
      calls.push_back(convolution(cat, map_u8(n, l.col, side), l.k, l.stride, l.pad, false,
                                  l.col));
    }
  }
  if (wide) {   // the high output over [high | low upsampled]
    calls.push_back(upsampling(low, view(joined, l.chi, l.cli)));
    calls.push_back(convolution(joined, out_high, l.k, l.stride, l.pad, false, l.coh));
    return calls;
  }
  if (!stacked && l.cli > 0 && l.coh > 0) {   // low-to-high, upsampled into the high output
    if (l.side(l.hl) == high_side(l)) {
      calls.push_back(convolution(low, out_high, l.k, l.stride, l.pad, false, 0));
    } else {
      memory small = map_u8(n, l.coh, l.side(l.hl));
      calls.push_back(convolution(low, small, l.k, l.stride, l.pad, false, 0));
      calls.push_back(upsampling(small, out_high));
    }
  }
  if (l.chi > 0 && l.coh > 0)
    calls.push_back(convolution(h2h_in, out_high, l.k, l.stride, l.pad, l.cli > 0, l.coh));
  return calls;
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

static double run_ms(const std::vector<Call> &calls) {
  auto start = std::chrono::steady_clock::now();
  for (auto &call : calls) call();
  queue.wait();
  std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  return took.count();
}

// One layer's options (its calls in each arrangement that applies), timed in `rounds`
// interleaved rounds after two of warm-up: the index of the fastest by median.
static size_t fastest(const std::vector<std::vector<Call>> &options, int rounds) {
  if (options.size() == 1) return 0;
  std::vector<std::vector<double>> times(options.size());
  for (int round = 0; round < rounds + 2; ++round)
    for (size_t i = 0; i < options.size(); ++i) {
      double ms = run_ms(options[i]);
      if (round >= 2) times[i].push_back(ms);
    }
  size_t best = 0;
  for (size_t i = 1; i < options.size(); ++i)
    if (median(times[i]) < median(times[best])) best = i;
  return best;
}

static bool parse_arrangements(const std::string &list, bool allowed[ARRANGEMENTS]) {
  std::fill(allowed, allowed + ARRANGEMENTS, false);
  std::istringstream names(list);
  std::string name;
  while (std::getline(names, name, ',')) {
    int a = 0;
    while (a < ARRANGEMENTS && name != ARRANGEMENT_NAMES[a]) ++a;
    if (a == ARRANGEMENTS) return false;
    allowed[a] = true;
  }
  return allowed[SPLIT];   // every layer has a split arrangement, and only that one
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
                         "FILE[@A,B...]...\n");
    return 2;
  }
  memory::dim batch = std::atoi(argv[1]);
  int rounds = std::atoi(argv[2]);
  struct Network {
    std::string file, allowed;                // its layers' file, the arrangements allowed
    std::vector<std::string> names;           // a layer's name
    std::vector<Arrangement> arrangements;    // its arrangement
    std::vector<std::vector<Call>> layers;    // its calls
    std::vector<std::vector<double>> times;   // its time in each timed round (ms)
    std::vector<double> totals;               // the network's time in each timed round
    long long macs = 0;
    size_t calls = 0;
  };
  std::vector<Network> networks;
  for (int i = 3; i < argc; ++i) {
    Network net;
    std::string spec = argv[i];
    size_t at = spec.rfind('@');
    net.file = spec.substr(0, at);
    net.allowed = at == std::string::npos ? "split" : spec.substr(at + 1);
    bool allowed[ARRANGEMENTS];
    if (!parse_arrangements(net.allowed, allowed)) {
      std::fprintf(stderr, "floor: %s: the arrangements are split, stacked and wide, split "
                           "among them\n", argv[i]);
      return 2;
    }
    for (const Layer &l : read_layers(net.file)) {
      std::vector<std::vector<Call>> options;
      std::vector<Arrangement> which;
      std::vector<long long> macs;
      for (int a = 0; a < ARRANGEMENTS; ++a) {
        if (!allowed[a] || !applies(Arrangement(a), l)) continue;
        long long before = macs_per_image;
        options.push_back(build(Arrangement(a), l, batch));
        auto &calls = options.back();
        calls.erase(std::remove(calls.begin(), calls.end(), nullptr), calls.end());
        which.push_back(Arrangement(a));
        macs.push_back(macs_per_image - before);
      }
      size_t best = fastest(options, std::max(5, rounds / 2));
      net.calls += options[best].size();
      net.macs += macs[best];
      net.names.push_back(l.name);
      net.arrangements.push_back(which[best]);
      net.layers.push_back(options[best]);
    }
    net.times.resize(net.layers.size());
    networks.push_back(std::move(net));
  }
  for (const Network &net : networks)
    if (net.layers.size() != networks[0].layers.size()) {
      std::fprintf(stderr, "floor: %s has %zu layers, %s %zu: the networks are timed layer "
                           "by layer side by side\n", net.file.c_str(), net.layers.size(),
                   networks[0].file.c_str(), networks[0].layers.size());
      return 2;
    }
  for (int round = 0; round < rounds + 2; ++round) {   // two rounds of warm-up
    std::vector<double> totals(networks.size(), 0.);
    for (size_t l = 0; l < networks[0].layers.size(); ++l)
      for (size_t i = 0; i < networks.size(); ++i) {
        double ms = run_ms(networks[i].layers[l]);
        totals[i] += ms;
        if (round >= 2) networks[i].times[l].push_back(ms);
      }
    for (size_t i = 0; round >= 2 && i < networks.size(); ++i)
      networks[i].totals.push_back(totals[i]);
  }
  for (const Network &net : networks) {
    int count[ARRANGEMENTS] = {0, 0, 0};
    for (Arrangement a : net.arrangements) ++count[a];
    std::printf("{\"file\": \"%s\", \"allowed\": \"%s\", \"batch\": %ld, \"ms\": %.4f, "
                "\"min_ms\": %.4f, \"calls\": %zu, \"macs_per_image\": %lld, "
                "\"arrangements\": {\"split\": %d, \"stacked\": %d, \"wide\": %d}}\n",
                net.file.c_str(), net.allowed.c_str(), static_cast<long>(batch),
                median(net.totals), *std::min_element(net.totals.begin(), net.totals.end()),
                net.calls, net.macs, count[SPLIT], count[STACKED], count[WIDE]);
    for (size_t l = 0; per_layer && l < net.layers.size(); ++l)
      std::printf("{\"file\": \"%s\", \"allowed\": \"%s\", \"layer\": \"%s\", "
                  "\"arrangement\": \"%s\", \"ms\": %.4f}\n", net.file.c_str(),
                  net.allowed.c_str(), net.names[l].c_str(),
                  ARRANGEMENT_NAMES[net.arrangements[l]], median(net.times[l]));
  }
  return 0;
}
