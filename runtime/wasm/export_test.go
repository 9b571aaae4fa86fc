package wasm

import "context"

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
