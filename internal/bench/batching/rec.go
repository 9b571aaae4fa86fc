package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"log"
	"math"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/internal/bench/load"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/onnx"
	"github.com/cortexfn/cortex/samples/ocr/predictor"
	"github.com/cortexfn/cortex/samples/ocr/testpage"
)

// The recogniser workload (-workload rec): a model whose inference
// dominates a request. The OCR sample's text recogniser (PaddleOCR v4
// rec, the model samples/ocr runs on every line it finds) served as a
// function of its own: a request is one line image, 48 x 320 grey pixels
// as the raw body (15 KiB), the answer its text as JSON. One line costs the
// model milliseconds on a CPU; the HTTP work around it, tens of
// microseconds.
//
// The function, recogniser, is a Go predictor on runtime/onnx's Session,
// as samples/ocr is, with a PredictBatch: the members' pixels are
// normalised straight into one [n, 3, 48, 320] tensor (no copy per
// member), the model runs once, and each member's rows of the [n, T, C]
// output are decoded (CTC, greedy) into its own answer.
//
// It is served with batching off and on, from conns single-line clients,
// in alternating rounds; beside them the model alone (Session.Run in
// process, no runtime, no HTTP) runs batches of 1 and of the sizes the
// batched server formed, so both gains can be read side by side: served
// on/off, and the model's batch-n/batch-1.
const (
	recH, recW = 48, 320
	lineElems  = 3 * recH * recW
)

type recogniser struct {
	threads int // SessionOptions.IntraOpThreads
	sess    *onnx.Session
	chars   []string
}

func (r *recogniser) Init(ctx context.Context, cfg functions.Config) error {
	chars, err := readChars(filepath.Join(cfg.Model, predictor.DictionaryFile))
	if err != nil {
		return err
	}
	sess, err := onnx.Open(ctx, filepath.Join(cfg.Model, predictor.RecogniserFile), onnx.SessionOptions{Dir: cfg.Dir, IntraOpThreads: r.threads})
	if err != nil {
		return err
	}
	r.sess, r.chars = sess, chars
	return nil
}

func (r *recogniser) Close() error { return r.sess.Close() }

// Predict reads one line: a batch of one.
func (r *recogniser) Predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	resps, err := r.PredictBatch(ctx, []*functions.Request{req})
	if err != nil {
		return nil, err
	}
	return resps[0], nil
}

// PredictBatch reads every well-formed line in one run of the model; a
// body of the wrong size gets its own 400.
func (r *recogniser) PredictBatch(ctx context.Context, reqs []*functions.Request) ([]*functions.Response, error) {
	resps := make([]*functions.Response, len(reqs))
	var ok []int
	for i, req := range reqs {
		if len(req.Body) != recH*recW {
			resps[i] = functions.Text(http.StatusBadRequest, fmt.Sprintf("want a %dx%d grey line image, %d bytes; got %d bytes", recW, recH, recH*recW, len(req.Body)))
			continue
		}
		ok = append(ok, i)
	}
	if len(ok) == 0 {
		return resps, nil
	}
	in := make([]float32, len(ok)*lineElems)
	for k, i := range ok {
		normalise(in[k*lineElems:(k+1)*lineElems], reqs[i].Body)
	}
	out, err := r.sess.Run(ctx, onnx.Tensor{Shape: []int64{int64(len(ok)), 3, recH, recW}, Data: in})
	if err != nil {
		return nil, err
	}
	steps, classes := int(out[0].Shape[1]), int(out[0].Shape[2])
	for k, i := range ok {
		text, conf := ctcGreedy(out[0].Data[k*steps*classes:(k+1)*steps*classes], steps, classes, r.chars)
		resp, err := functions.JSON(http.StatusOK, recAnswer{Text: text, Confidence: math.Round(conf*1e4) / 1e4})
		if err != nil {
			return nil, err
		}
		resps[i] = resp
	}
	return resps, nil
}

type recAnswer struct {
	Text       string  `json:"text"`
	Confidence float64 `json:"confidence"`
}

// normalise writes a grey line image into the recogniser's input, its
// three (BGR) planes alike, scaled to [-1, 1] as PaddleOCR does.
func normalise(dst []float32, pix []byte) {
	plane := recH * recW
	for i, v := range pix {
		f := float32(v)/127.5 - 1
		dst[i], dst[plane+i], dst[2*plane+i] = f, f, f
	}
}

// ctcGreedy decodes one line's steps x classes probabilities: the best
// class at each step, repeats merged, blanks (class 0) dropped.
func ctcGreedy(probs []float32, steps, classes int, chars []string) (string, float64) {
	var sb strings.Builder
	var sum float64
	n, prev := 0, -1
	for s := range steps {
		row := probs[s*classes : (s+1)*classes]
		best := 0
		for c, p := range row {
			if p > row[best] {
				best = c
			}
		}
		if best != 0 && best != prev && best < len(chars) {
			sb.WriteString(chars[best])
			sum += float64(row[best])
			n++
		}
		prev = best
	}
	if n == 0 {
		return "", 0
	}
	return sb.String(), sum / float64(n)
}

// readChars reads the recogniser's classes: the CTC blank, one character
// a line of the dictionary, and a space.
func readChars(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the dictionary: %w (fetch the OCR models: make models)", err)
	}
	defer f.Close()
	chars := []string{""}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		chars = append(chars, sc.Text())
	}
	return append(chars, " "), sc.Err()
}

// recLines renders distinct line images: the test pages' lines and a few
// more, each drawn on its own 320 x 48 image.
func recLines() (bodies []string, texts []string) {
	for _, p := range testpage.Pages {
		texts = append(texts, p.Texts()...)
	}
	texts = append(texts, "Batch 0042 of 0064", "Order 5531 shipped", "Room 12B floor 3", "Balance due 88.10")
	for _, t := range texts {
		size := min(28, 1.8*recW/float64(len(t)))
		img := testpage.Render(recW, recH, []testpage.Line{{Text: t, X: 6, Y: int((recH - size) / 2), Size: size}})
		bodies = append(bodies, string(grey(img)))
	}
	return bodies, texts
}

func grey(img *image.Gray) []byte {
	b := make([]byte, 0, recW*recH)
	for y := range recH {
		b = append(b, img.Pix[y*img.Stride:y*img.Stride+recW]...)
	}
	return b
}

// runRec is the recogniser workload's measurement.
//
// threads is the sessions' IntraOpThreads (0: GOMAXPROCS, as a function
// runs by default). ONNX Runtime's pool threads spin while they wait for
// work, which one run at a time leaves them doing between its parallel
// parts: with 1 the CPU per row compares the model's work alone.
func runRec(dir string, conns int, d time.Duration, rounds, maxBatch int, interval time.Duration, threads int) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		log.Fatal(err)
	}
	bodies, texts := recLines()
	cfg := func(b runtime.Batching) runtime.Config {
		return runtime.Config{Name: "rec", Predictor: runtime.PredictorConfig{Type: "go", Model: dir},
			Limits: runtime.Limits{MaxConcurrency: conns, MaxQueue: 1024, Timeout: runtime.Duration(time.Minute)}, Batching: b}
	}
	on := runtime.Batching{MaxBatchSize: maxBatch, BatchInterval: runtime.Duration(interval)}
	offURL, _, stopOff := serve(&recogniser{threads: threads}, cfg(runtime.Batching{}), nil)
	defer stopOff()
	onURL, _, stopOn := serve(&recogniser{threads: threads}, cfg(on), nil)
	defer stopOn()

	// The model alone, and a check that batching changes no answer.
	alone := &recogniser{threads: threads}
	if err := alone.Init(context.Background(), functions.Config{Model: dir}); err != nil {
		log.Fatal(err)
	}
	defer alone.Close()
	reqs := make([]*functions.Request, len(bodies))
	for i, b := range bodies {
		reqs[i] = &functions.Request{Body: []byte(b)}
	}
	batched, err := alone.PredictBatch(context.Background(), reqs)
	if err != nil {
		log.Fatal(err)
	}
	same, right := 0, 0
	for i, req := range reqs {
		one, err := alone.Predict(context.Background(), req)
		if err != nil {
			log.Fatal(err)
		}
		if string(one.Body) == string(batched[i].Body) {
			same++
		}
		var a recAnswer
		if json.Unmarshal(one.Body, &a) == nil && a.Text == texts[i] {
			right++
		}
	}

	sizes := []int{1, 4, 8, 16, 32, maxBatch}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	modelRows := map[int][3]float64{} // rows, seconds, CPU seconds
	results := map[string][]load.Result{}
	cpu := map[string]time.Duration{}
	var batchSum, batchN float64
	for range rounds {
		for _, m := range []struct{ name, url string }{{"off", offURL}, {"on", onURL}} {
			load.RunRaw(m.url+"/predict", bodies, conns, time.Second)
			s0, n0 := scrape(m.url, "cortex_batch_size")
			c0 := cpuTime()
			results[m.name] = append(results[m.name], load.RunRaw(m.url+"/predict", bodies, conns, d))
			cpu[m.name] += cpuTime() - c0
			s1, n1 := scrape(m.url, "cortex_batch_size")
			batchSum, batchN = batchSum+s1-s0, batchN+n1-n0
		}
		for _, n := range sizes {
			c0 := cpuTime()
			rows, secs := runAlone(alone, bodies, n, d/time.Duration(len(sizes)))
			r := modelRows[n]
			modelRows[n] = [3]float64{r[0] + rows, r[1] + secs, r[2] + (cpuTime() - c0).Seconds()}
		}
	}
	off, onRes := load.Merge(results["off"]), load.Merge(results["on"])
	meanBatch := batchSum / max(batchN, 1)
	fmt.Printf("OCR recogniser (PaddleOCR v4 rec, one 320x48 line per request), %d concurrent single-line clients (raw client), %d x %s per mode, GOMAXPROCS=%d, intra-op threads %d\n",
		conns, rounds, d, goruntime.GOMAXPROCS(0), cmp.Or(threads, goruntime.GOMAXPROCS(0)))
	fmt.Printf("batched answers equal unbatched: %d of %d lines; text read right: %d of %d\n", same, len(reqs), right, len(reqs))
	cpuRow := func(mode string, r load.Result) time.Duration {
		return (cpu[mode] / time.Duration(max(r.N, 1))).Round(10 * time.Microsecond)
	}
	fmt.Printf("%-64s %10s %10s %10s %10s %8s\n", "served", "rows/s", "p50", "p99", "CPU/row", "errors")
	fmt.Printf("%-64s %10.1f %10s %10s %10s %8d\n", "batching off", off.RPS(), off.Pct(50), off.Pct(99), cpuRow("off", off), off.Errors)
	fmt.Printf("%-64s %10.1f %10s %10s %10s %8d\n", fmt.Sprintf("batching on (max_batch_size %d, batch_interval %s; mean batch %.1f)", maxBatch, interval, meanBatch),
		onRes.RPS(), onRes.Pct(50), onRes.Pct(99), cpuRow("on", onRes), onRes.Errors)
	fmt.Printf("served on/off: rows/s %.2f, CPU/row %.2f\n", onRes.RPS()/off.RPS(), cpuRow("on", onRes).Seconds()/cpuRow("off", off).Seconds())
	fmt.Printf("%-64s %10s %10s %10s %10s\n", "the model alone (Session.Run in process, one run at a time)", "rows/s", "vs batch 1", "CPU/row", "vs batch 1")
	one := modelRows[1][0] / modelRows[1][1]
	oneCPU := modelRows[1][2] / modelRows[1][0]
	for _, n := range sizes {
		r := modelRows[n][0] / modelRows[n][1]
		c := modelRows[n][2] / modelRows[n][0]
		fmt.Printf("%-64s %10.1f %10.2f %10s %10.2f\n", fmt.Sprintf("batch of %d", n), r, r/one,
			time.Duration(c*float64(time.Second)).Round(10*time.Microsecond), c/oneCPU)
	}
	fmt.Printf("served batching off / model alone at batch 1: %.2f; served on / model alone at batch %d: %.2f\n",
		off.RPS()/one, maxBatch, onRes.RPS()/(modelRows[maxBatch][0]/modelRows[maxBatch][1]))
	if off.Errors+onRes.Errors > 0 || same != len(reqs) {
		os.Exit(1)
	}
}

// runAlone runs the model on batches of n lines, one after another, for
// about d (at least three runs), and returns the rows read and the seconds
// taken.
func runAlone(r *recogniser, bodies []string, n int, d time.Duration) (float64, float64) {
	in := make([]float32, n*lineElems)
	for k := range n {
		normalise(in[k*lineElems:(k+1)*lineElems], []byte(bodies[k%len(bodies)]))
	}
	t := onnx.Tensor{Shape: []int64{int64(n), 3, recH, recW}, Data: in}
	start := time.Now()
	runs := 0
	for runs < 3 || time.Since(start) < d {
		if _, err := r.sess.Run(context.Background(), t); err != nil {
			log.Fatal(err)
		}
		runs++
	}
	return float64(runs * n), time.Since(start).Seconds()
}

var (
	_ functions.BatchPredictor = (*recogniser)(nil)
	_ functions.Initializer    = (*recogniser)(nil)
	_ functions.Closer         = (*recogniser)(nil)
)
