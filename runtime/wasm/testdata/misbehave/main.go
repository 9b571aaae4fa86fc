// Command misbehave is a preprocess-only stage guest whose input is a
// command: "name" or "name:argument". Each command exercises one way a
// stage can fail or probe its sandbox.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"
	"unsafe"

	"github.com/cortexfn/cortex/functions/wasmguest"
)

var (
	keep [][]byte // what "grow" and "bomb" allocate stays reachable
	sink int
)

func init() { wasmguest.Preprocess(run) }

func run(in []byte) ([]byte, error) {
	cmd, arg, _ := bytes.Cut(in, []byte(":"))
	switch string(cmd) {
	case "echo":
		return arg, nil
	case "fail": // fail:STATUS:MESSAGE
		s, msg, _ := bytes.Cut(arg, []byte(":"))
		status, _ := strconv.Atoi(string(s))
		return nil, wasmguest.Errorf(status, "%s", msg)
	case "error":
		return nil, errors.New(string(arg))
	case "panic":
		panic(string(arg))
	case "trap": // a load ~3.75 GiB past the start of memory, far past its end
		p := (*byte)(unsafe.Add(unsafe.Pointer(&sink), 0xf0000000))
		return []byte{*p}, nil
	case "loop":
		for {
			sink++
		}
	case "spin": // spin:DURATION of busy work, by the guest's clock (grant Clock for real time)
		d, err := time.ParseDuration(string(arg))
		if err != nil {
			return nil, err
		}
		for start := time.Now(); time.Since(start) < d; {
			sink++
		}
		return []byte("spun"), nil
	case "bomb":
		for {
			keep = append(keep, make([]byte, 1<<20))
		}
	case "grow": // grow:MiB
		n, _ := strconv.Atoi(string(arg))
		for range n {
			keep = append(keep, make([]byte, 1<<20))
		}
		return []byte("grown"), nil
	case "recurse": // recurse:N calls a function N deep
		n, _ := strconv.Atoi(string(arg))
		return strconv.AppendInt(nil, int64(recurse(n)), 10), nil
	case "exit":
		code, _ := strconv.Atoi(string(arg))
		os.Exit(code)
	case "open":
		b, err := os.ReadFile(string(arg))
		if err != nil {
			return []byte("error: " + err.Error()), nil
		}
		return b, nil
	case "dial":
		c, err := net.DialTimeout("tcp", string(arg), time.Second)
		if err != nil {
			return []byte("error: " + err.Error()), nil
		}
		c.Close()
		return []byte("connected"), nil
	case "ambient":
		r := make([]byte, 16)
		_, err := rand.Read(r)
		return json.Marshal(map[string]any{
			"env":      os.Environ(),
			"now":      time.Now().UTC().Format(time.RFC3339),
			"rand":     hex.EncodeToString(r),
			"rand_err": fmt.Sprint(err),
		})
	case "log":
		wasmguest.Log(slog.LevelWarn, string(arg))
		return []byte("logged"), nil
	}
	return nil, wasmguest.Errorf(400, "unknown command %q", cmd)
}

//go:noinline
func recurse(n int) int {
	if n == 0 {
		return 0
	}
	return recurse(n-1) + 1
}

func main() {}
