// Command relu-go-peer serves relu.v1.ReluService/ApplyReLU with grpc-go: the
// server a team might write in Go instead of running relu-serve, and the Go
// peer of the service benchmarks (bench/h2load_bench.py,
// bench/run_service_bench.py).
//
// Built in GOPATH mode from Debian 12's packages only (golang-go,
// golang-google-grpc-dev 1.33, golang-google-protobuf-dev, protoc-gen-go,
// protoc-gen-go-grpc): bench/go_peer/build.sh generates the message and
// service code from proto/relu/v1/relu.proto into the build directory.
//
// It computes tf.keras.layers.ReLU as the spec (tests/data/keras-relu.md)
// says, for DATA_TYPE_FLOAT32 and DATA_TYPE_FLOAT64, in place on the
// request's tensor bytes, which the response then carries back. Float16 and
// bfloat16 are refused with INVALID_ARGUMENT, as are bad shapes, data of the
// wrong length and the parameters Keras refuses.
//
// It also answers grpc.health.v1 (SERVING for relu.v1.ReluService), since
// relu-cli checks health before it sends calls, and prints
// "gRPC listening on HOST:PORT" once it serves.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	reluv1 "reluserve/reluv1"
)

const serviceName = "relu.v1.ReluService"

type reluServer struct {
	reluv1.UnimplementedReluServiceServer
}

// ApplyReLU validates the request, computes in place on its tensor's bytes
// and answers with that same tensor.
func (reluServer) ApplyReLU(_ context.Context, req *reluv1.ApplyReLURequest) (*reluv1.ApplyReLUResponse, error) {
	t := req.GetTensor()
	if t == nil {
		return nil, status.Error(codes.InvalidArgument, "tensor is missing from the request")
	}
	var size int
	switch t.Dtype {
	case reluv1.DataType_DATA_TYPE_FLOAT32:
		size = 4
	case reluv1.DataType_DATA_TYPE_FLOAT64:
		size = 8
	default:
		return nil, status.Errorf(codes.InvalidArgument,
			"tensor.dtype %v is not supported by this server (DATA_TYPE_FLOAT32 and DATA_TYPE_FLOAT64 are)", t.Dtype)
	}
	n, err := elementCount(t.Shape, size)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if int64(len(t.Data)) != n*int64(size) {
		return nil, status.Errorf(codes.InvalidArgument,
			"tensor.data has %d bytes; shape %v of %v needs %d", len(t.Data), t.Shape, t.Dtype, n*int64(size))
	}
	p, err := newParams(req.GetParams())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if size == 4 {
		reluFloat32(p, t.Data)
	} else {
		reluFloat64(p, t.Data)
	}
	return &reluv1.ApplyReLUResponse{Tensor: t}, nil
}

// elementCount is the product of shape (1 for a scalar), refusing negative
// dimensions and counts whose byte size does not fit an int64.
func elementCount(shape []int64, size int) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("tensor.shape %v has a negative dimension", shape)
		}
	}
	for _, d := range shape {
		if d == 0 {
			return 0, nil
		}
		if n > math.MaxInt64/int64(size)/d {
			return 0, fmt.Errorf("tensor.shape %v has too many elements", shape)
		}
		n *= d
	}
	return n, nil
}

// params are the checked Keras parameters and the branch the algorithm
// takes for them.
type params struct {
	leaky   bool    // s != 0, no max_value, t == 0: y = x > 0 ? x : x * s
	slope   bool    // s != 0 outside the leaky path: y = p - s * neg
	thresh  bool    // t != 0: p = x * (x > t ? 1 : 0)
	relu6   bool    // t == 0, max_value == 6: p = min(max(x, 0), 6)
	clip    bool    // max_value set, not relu6: p = max(min(p, m), 0)
	s, t, m float64 // the parameters as sent
}

// newParams checks p as Keras does (max_value, negative_slope, threshold in
// that order; NaN is refused too) and picks the branch. nil p is plain ReLU.
func newParams(p *reluv1.ReluParams) (params, error) {
	var out params
	if p == nil {
		return out, nil
	}
	if p.MaxValue != nil {
		if err := checkParam("max_value", *p.MaxValue); err != nil {
			return out, err
		}
	}
	if err := checkParam("negative_slope", p.NegativeSlope); err != nil {
		return out, err
	}
	if err := checkParam("threshold", p.Threshold); err != nil {
		return out, err
	}
	out.s, out.t = p.NegativeSlope, p.Threshold
	hasMax := p.MaxValue != nil
	if hasMax {
		out.m = *p.MaxValue
	}
	if out.s != 0 && !hasMax && out.t == 0 {
		out.leaky = true
		return out, nil
	}
	out.slope = out.s != 0
	out.thresh = out.t != 0
	out.relu6 = !out.thresh && hasMax && out.m == 6
	out.clip = hasMax && !out.relu6
	return out, nil
}

func checkParam(name string, v float64) error {
	if math.IsNaN(v) {
		return fmt.Errorf("%s of a ReLU layer cannot be NaN. Received: %s=%s", name, name, pythonRepr(v))
	}
	if v < 0 {
		return fmt.Errorf("%s of a ReLU layer cannot be a negative value. Received: %s=%s", name, name, pythonRepr(v))
	}
	return nil
}

// pythonRepr formats v as Python's repr(float) does (shortest round trip;
// scientific below 1e-4 and from 1e16), for the Keras error messages.
func pythonRepr(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(v, 'e', -1, 64) // "-d.ddde±XX"
	mant, expText, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expText)
	sign := ""
	if strings.HasPrefix(mant, "-") {
		sign, mant = "-", mant[1:]
	}
	digits := strings.Replace(mant, ".", "", 1)
	if exp < -4 || exp >= 16 {
		s := sign + digits[:1]
		if len(digits) > 1 {
			s += "." + digits[1:]
		}
		if exp < 0 {
			return fmt.Sprintf("%se-%02d", s, -exp)
		}
		return fmt.Sprintf("%se+%02d", s, exp)
	}
	if exp < 0 {
		return sign + "0." + strings.Repeat("0", -exp-1) + digits
	}
	if len(digits) <= exp+1 {
		return sign + digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	}
	return sign + digits[:exp+1] + "." + digits[exp+1:]
}

// The spec's max and min: the tensor operand a wins on ties (+0 versus -0)
// and when it is NaN.
func max32(a, b float32) float32 {
	if a < b {
		return b
	}
	return a
}

func min32(a, b float32) float32 {
	if b < a {
		return b
	}
	return a
}

func max64(a, b float64) float64 {
	if a < b {
		return b
	}
	return a
}

func min64(a, b float64) float64 {
	if b < a {
		return b
	}
	return a
}

// reluFloat32 applies p to the little-endian float32 values of b, in place.
// Every product is converted explicitly (float32(...)): Go may otherwise
// fuse a multiply and an add into one FMA, which changes results.
func reluFloat32(p params, b []byte) {
	le := binary.LittleEndian
	if !p.leaky && !p.slope && !p.thresh && !p.relu6 && !p.clip {
		// Plain ReLU, max(x, 0): only negatives change (-0.0 and NaN stay).
		for i := 0; i+4 <= len(b); i += 4 {
			if math.Float32frombits(le.Uint32(b[i:])) < 0 {
				le.PutUint32(b[i:], 0)
			}
		}
		return
	}
	if p.leaky {
		s := float32(p.s) // the leaky path rounds the slope to float32
		for i := 0; i+4 <= len(b); i += 4 {
			x := math.Float32frombits(le.Uint32(b[i:]))
			if !(x > 0) {
				le.PutUint32(b[i:], math.Float32bits(float32(x*s)))
			}
		}
		return
	}
	s, t, m := float32(p.s), float32(p.t), float32(p.m)
	for i := 0; i+4 <= len(b); i += 4 {
		x := math.Float32frombits(le.Uint32(b[i:]))
		var neg float32
		if p.slope {
			neg = max32(float32(-x+t), 0)
		}
		var y float32
		switch {
		case p.thresh:
			var gt float32
			if x > t {
				gt = 1
			}
			y = float32(x * gt) // -0.0 for negatives, NaN for -inf
		case p.relu6:
			y = min32(max32(x, 0), 6)
		default:
			y = max32(x, 0)
		}
		if p.clip {
			y = max32(min32(y, m), 0)
		}
		if p.slope {
			y = float32(y - float32(s*neg))
		}
		le.PutUint32(b[i:], math.Float32bits(y))
	}
}

// reluFloat64 is reluFloat32 for float64 values.
func reluFloat64(p params, b []byte) {
	le := binary.LittleEndian
	if !p.leaky && !p.slope && !p.thresh && !p.relu6 && !p.clip {
		for i := 0; i+8 <= len(b); i += 8 {
			if math.Float64frombits(le.Uint64(b[i:])) < 0 {
				le.PutUint64(b[i:], 0)
			}
		}
		return
	}
	if p.leaky {
		s := float64(float32(p.s)) // rounded to float32 even for float64
		for i := 0; i+8 <= len(b); i += 8 {
			x := math.Float64frombits(le.Uint64(b[i:]))
			if !(x > 0) {
				le.PutUint64(b[i:], math.Float64bits(float64(x*s)))
			}
		}
		return
	}
	s, t, m := p.s, p.t, p.m
	for i := 0; i+8 <= len(b); i += 8 {
		x := math.Float64frombits(le.Uint64(b[i:]))
		var neg float64
		if p.slope {
			neg = max64(float64(-x+t), 0)
		}
		var y float64
		switch {
		case p.thresh:
			var gt float64
			if x > t {
				gt = 1
			}
			y = float64(x * gt)
		case p.relu6:
			y = min64(max64(x, 0), 6)
		default:
			y = max64(x, 0)
		}
		if p.clip {
			y = max64(min64(y, m), 0)
		}
		if p.slope {
			y = float64(y - float64(s*neg))
		}
		le.PutUint64(b[i:], math.Float64bits(y))
	}
}

func main() {
	address := flag.String("grpc-address", "127.0.0.1:0", "host:port to listen on; port 0 picks a free one")
	maxMessage := flag.Int("max-message-bytes", 256<<20, "largest message received and sent, bytes")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("relu-go-peer: ")

	lis, err := net.Listen("tcp", *address)
	if err != nil {
		log.Fatalf("cannot listen on %s: %v", *address, err)
	}
	s := grpc.NewServer(grpc.MaxRecvMsgSize(*maxMessage), grpc.MaxSendMsgSize(*maxMessage))
	reluv1.RegisterReluServiceServer(s, reluServer{})
	hs := health.NewServer()
	hs.SetServingStatus(serviceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		s.Stop()
	}()
	fmt.Printf("gRPC listening on %s\n", lis.Addr())
	if err := s.Serve(lis); err != nil {
		log.Fatalf("serve: %v", err)
	}
}
