package wasm

import (
	"context"
	"time"
)

// StartInstance instantiates one instance from the compiled module and
// closes it, for the instance start benchmark.
func (m *Module) StartInstance(ctx context.Context) error {
	inst, err := m.instantiate(ctx)
	if err != nil {
		return err
	}
	m.close(inst)
	return nil
}

// SetLogClock replaces the clock of the log limits' one-second windows.
func (m *Module) SetLogClock(now func() time.Time) { m.logs.now = now }

// Bound is the module rewrite of bound.go, for FuzzBound.
func Bound(bin []byte, stackLimit uint32, yield bool) ([]byte, error) {
	b, err := bound(bin, boundConfig{stackLimit: stackLimit, yield: yield})
	if err != nil {
		return nil, err
	}
	return b.bin, nil
}

// AppendS33 is the signed LEB128 encoder of bound.go.
var AppendS33 = appendS33
