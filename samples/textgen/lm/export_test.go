package lm

import "context"

// Cache and Forward expose one step of the model to the tests in lm_test,
// which check the KV cache against a full recomputation.
type Cache = cache

func (m *Model) NewCache() *Cache { return m.newCache() }

func (m *Model) Forward(ctx context.Context, ids []int, c *Cache) ([]float32, error) {
	return m.forward(ctx, ids, c)
}
