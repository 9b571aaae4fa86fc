package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cortexfn/cortex/adapters"
)

// asyncStore keeps the host's background predictions in one bbolt file.
//
// Why bbolt rather than a pure-Go SQLite (modernc.org/sqlite): the queue
// needs a key-value map with ACID transactions and an fsync at each
// commit, nothing relational; bbolt is that and only that, in one file,
// pure Go, small (etcd's storage, kept by etcd's maintainers), with a
// file lock that keeps two cortex serve from sharing a state file. A
// pure-Go SQLite is a C library translated to Go: ten times the code
// in the binary and a slower build, for queries the queue never makes.
type asyncStore struct {
	db *bolt.DB
}

var predictionsBucket = []byte("predictions")

// record is one background prediction as the store keeps it (JSON).
type record struct {
	Function string `json:"function"`
	// Request is what the host sends the function at each attempt.
	Request storedRequest `json:"request"`
	// Digest identifies the request for a repeated PUT with the same id.
	Digest string `json:"digest"`
	// Webhook and Events: where the prediction's events go (none when
	// Webhook is empty).
	Webhook string   `json:"webhook,omitempty"`
	Events  []string `json:"events,omitempty"`
	// Attempts counts the times the prediction was handed to a process
	// (at-least-once: a host killed under it hands it over again).
	Attempts int `json:"attempts"`
	// Res is the resource callers and webhooks get; Res.Status is the
	// state (starting is queued, processing handed to a process).
	Res adapters.Prediction `json:"resource"`
	// Expires is when a finished prediction is deleted (zero while it
	// runs).
	Expires time.Time `json:"expires,omitzero"`
	// HookAttempts counts the deliveries of the completed event tried;
	// HookDone is set once it was delivered or given up.
	HookAttempts int  `json:"hook_attempts,omitempty"`
	HookDone     bool `json:"hook_done,omitempty"`
}

// storedRequest is the request of a background prediction: the headers
// that matter to the function (asyncHeaders), not the caller's others.
type storedRequest struct {
	Method   string      `json:"method"`
	Path     string      `json:"path"`
	RawQuery string      `json:"raw_query,omitempty"`
	Header   http.Header `json:"header,omitempty"`
	Body     []byte      `json:"body,omitempty"`
}

// hookPending reports whether the completed event still has to go.
func (r *record) hookPending() bool {
	return r.Webhook != "" && r.Res.Done() && !r.HookDone
}

func storeKey(function, id string) []byte { return []byte(function + "/" + id) }

// openAsyncStore opens (or makes) the state file at path. A file that
// another cortex serve holds is an error at once, not a wait.
func openAsyncStore(path string) (*asyncStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("host: the state file %s is in use by another cortex serve: stop it, or give this one another state directory (--state)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("host: opening the state file %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(predictionsBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("host: the state file %s: %w", path, err)
	}
	return &asyncStore{db: db}, nil
}

func (s *asyncStore) close() error { return s.db.Close() }

// get returns the record, nil when there is none.
func (s *asyncStore) get(function, id string) (*record, error) {
	var rec *record
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		rec, err = decodeRecord(tx.Bucket(predictionsBucket).Get(storeKey(function, id)))
		return err
	})
	return rec, err
}

func decodeRecord(b []byte) (*record, error) {
	if b == nil {
		return nil, nil
	}
	rec := &record{}
	if err := json.Unmarshal(b, rec); err != nil {
		return nil, fmt.Errorf("host: a record of the state file does not decode: %w", err)
	}
	return rec, nil
}

// update changes the record in one transaction, committed (and synced
// to disk) before it returns. change gets nil when there is none; it
// returns the record to write (nil: write nothing) or an error, which
// update returns.
func (s *asyncStore) update(function, id string, change func(*record) (*record, error)) (*record, error) {
	var out *record
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(predictionsBucket)
		key := storeKey(function, id)
		rec, err := decodeRecord(b.Get(key))
		if err != nil {
			return err
		}
		next, err := change(rec)
		if err != nil || next == nil {
			out = rec
			return err
		}
		data, err := json.Marshal(next)
		if err != nil {
			return err
		}
		out = next
		return b.Put(key, data)
	})
	return out, err
}

// each calls fn with every record, in key order (function, then id).
func (s *asyncStore) each(fn func(*record) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(predictionsBucket).ForEach(func(_, v []byte) error {
			rec, err := decodeRecord(v)
			if err != nil {
				return err
			}
			return fn(rec)
		})
	})
}

// sweep deletes the finished predictions past their expiry whose
// webhook has nothing left to send, and returns how many.
func (s *asyncStore) sweep(now time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(predictionsBucket)
		// Keys first, deletes after: a cursor's Next after its Delete
		// may skip a key.
		var expired [][]byte
		if err := b.ForEach(func(k, v []byte) error {
			rec, err := decodeRecord(v)
			if err != nil {
				return err
			}
			if rec.Res.Done() && !rec.hookPending() && !rec.Expires.IsZero() && !now.Before(rec.Expires) {
				expired = append(expired, k)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range expired {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	return n, err
}
