package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The files of a job in its output directory.
const (
	// StateDir holds the job's state until it is complete, and its
	// identity after.
	StateDir = ".cortex-batch"
	// OutputsFile and FailuresFile are the results, in input order.
	OutputsFile  = "outputs.jsonl"
	FailuresFile = "failures.jsonl"

	jobFile        = "job.json"
	checkpointFile = "checkpoints"
	jobVersion     = 1
)

// identity is what makes two runs the same job.
type identity struct {
	Version     int               `json:"version"`
	Kind        string            `json:"kind"` // jsonl or dir
	InputDigest string            `json:"input_digest"`
	Items       int               `json:"items"`
	Params      map[string]string `json:"params"`
}

type jobState struct {
	identity
	// Input is the input's path when the job started, for people.
	Input    string `json:"input"`
	Complete bool   `json:"complete,omitempty"`
}

// checkpoint is how far the committed results go.
type checkpoint struct {
	next              int   // the first index not committed
	outLen, failLen   int64 // the files' lengths then
	succeeded, failed int
}

func (c checkpoint) encode() []byte {
	s := fmt.Sprintf("%d %d %d %d %d", c.next, c.outLen, c.failLen, c.succeeded, c.failed)
	return fmt.Appendf(nil, "%s %08x\n", s, crc32.ChecksumIEEE([]byte(s)))
}

func parseCheckpoint(line []byte) (checkpoint, bool) {
	var c checkpoint
	i := bytes.LastIndexByte(line, ' ')
	if i < 0 {
		return c, false
	}
	var sum uint32
	if _, err := fmt.Sscanf(string(line[i+1:]), "%08x", &sum); err != nil || crc32.ChecksumIEEE(line[:i]) != sum {
		return c, false
	}
	if _, err := fmt.Sscanf(string(line[:i]), "%d %d %d %d %d", &c.next, &c.outLen, &c.failLen, &c.succeeded, &c.failed); err != nil {
		return c, false
	}
	return c, true
}

// journal is a job's state on disk: its identity, the results committed
// so far and the checkpoints.
type journal struct {
	dir, state string
	job        jobState

	out, fail   *os.File
	outW, failW *bufio.Writer
	cp          *os.File
	at          checkpoint // what is written, buffered or not
	synced      checkpoint // the last checkpoint on disk
}

// openJournal opens the job in dir, starting it when dir has none. It
// refuses a dir that holds another job, or results without a job.
func openJournal(dir string, id identity, inputPath string) (*journal, error) {
	j := &journal{dir: dir, state: filepath.Join(dir, StateDir)}
	if err := os.MkdirAll(j.state, 0o755); err != nil {
		return nil, fmt.Errorf("--output: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(j.state, jobFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		for _, name := range []string{OutputsFile, FailuresFile} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				return nil, fmt.Errorf("--output %s has a %s but no job in %s: it is not a cortex batch job's, or its state was removed; give an empty or new directory", dir, name, StateDir)
			}
		}
		// The empty files first: job.json says the job exists.
		for _, name := range []string{OutputsFile, FailuresFile, checkpointFile} {
			if err := os.WriteFile(filepath.Join(j.state, name), nil, 0o644); err != nil {
				return nil, err
			}
		}
		j.job = jobState{identity: id, Input: inputPath}
		if err := j.writeJob(); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("reading the job in %s: %w", dir, err)
	default:
		if err := json.Unmarshal(b, &j.job); err != nil {
			return nil, fmt.Errorf("%s is not a job's state (%v): remove %s to start the job over", filepath.Join(j.state, jobFile), err, j.state)
		}
		if why := differs(j.job.identity, id); why != "" {
			return nil, fmt.Errorf("--output %s holds another job (%s, started on %s): run the same command to resume that one, or give another --output (or remove %s) to start this one", dir, why, j.job.Input, dir)
		}
	}
	if err := j.readCheckpoints(); err != nil {
		return nil, err
	}
	if j.job.Complete {
		return j, nil
	}
	open := func(name string, length int64) (*os.File, error) {
		p := filepath.Join(j.state, name)
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) && j.synced.next == id.Items {
			return nil, nil // renamed into place by a run that stopped before it marked the job complete
		}
		if err != nil {
			return nil, fmt.Errorf("opening the job's results: %w (remove %s to start over)", err, j.state)
		}
		fi, err := f.Stat()
		if err == nil && fi.Size() < length {
			err = fmt.Errorf("%s is %d bytes, shorter than its last checkpoint's %d: remove %s to start the job over", p, fi.Size(), length, j.state)
		}
		if err == nil {
			err = f.Truncate(length) // what was written after the checkpoint is done again
		}
		if err == nil {
			_, err = f.Seek(length, 0)
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	if j.out, err = open(OutputsFile, j.synced.outLen); err != nil {
		return nil, err
	}
	if j.fail, err = open(FailuresFile, j.synced.failLen); err != nil {
		j.closeFiles()
		return nil, err
	}
	if j.out != nil {
		j.outW = bufio.NewWriterSize(j.out, 256<<10)
	}
	if j.fail != nil {
		j.failW = bufio.NewWriterSize(j.fail, 64<<10)
	}
	j.at = j.synced
	return j, nil
}

// differs says how the identities differ, or "" when they do not.
func differs(have, want identity) string {
	var why []string
	if have.Version != want.Version {
		why = append(why, fmt.Sprintf("state version %d, this cortex writes %d", have.Version, want.Version))
	}
	if have.Kind != want.Kind || have.InputDigest != want.InputDigest || have.Items != want.Items {
		why = append(why, fmt.Sprintf("another input: %s of %d items with digest %.12s, this one %s of %d with %.12s",
			have.Kind, have.Items, have.InputDigest, want.Kind, want.Items, want.InputDigest))
	}
	for _, k := range slices.Sorted(maps.Keys(want.Params)) {
		if have.Params[k] != want.Params[k] {
			why = append(why, fmt.Sprintf("%s %q, not %q", k, have.Params[k], want.Params[k]))
		}
	}
	for k := range have.Params {
		if _, ok := want.Params[k]; !ok {
			why = append(why, "parameter "+k+" set")
		}
	}
	return strings.Join(why, "; ")
}

// readCheckpoints finds the last valid checkpoint; a torn or corrupt tail
// (a crash in the middle of a write) ends the log there.
func (j *journal) readCheckpoints() error {
	p := filepath.Join(j.state, checkpointFile)
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	good := 0
	for len(b[good:]) > 0 {
		i := bytes.IndexByte(b[good:], '\n')
		if i < 0 {
			break
		}
		c, ok := parseCheckpoint(b[good : good+i])
		if !ok {
			break
		}
		j.synced = c
		good += i + 1
	}
	if j.job.Complete {
		return nil
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(int64(good)); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Seek(int64(good), 0); err != nil {
		f.Close()
		return err
	}
	j.cp = f
	return nil
}

func (j *journal) writeJob() error {
	b, err := json.MarshalIndent(j.job, "", "  ")
	if err != nil {
		return err
	}
	return writeFileSync(filepath.Join(j.state, jobFile), append(b, '\n'))
}

// add commits the result of index j.at.next.
func (j *journal) add(line []byte, failed bool) error {
	w, n := j.outW, &j.at.outLen
	if failed {
		w, n = j.failW, &j.at.failLen
		j.at.failed++
	} else {
		j.at.succeeded++
	}
	if _, err := w.Write(line); err != nil {
		return err
	}
	*n += int64(len(line))
	j.at.next++
	return nil
}

// sync makes what is committed durable and records its checkpoint.
func (j *journal) sync() error {
	if j.at == j.synced || j.cp == nil {
		return nil
	}
	for _, x := range []struct {
		w *bufio.Writer
		f *os.File
	}{{j.outW, j.out}, {j.failW, j.fail}} {
		if x.w == nil {
			continue
		}
		if err := x.w.Flush(); err != nil {
			return err
		}
		if err := x.f.Sync(); err != nil {
			return err
		}
	}
	if _, err := j.cp.Write(j.at.encode()); err != nil {
		return err
	}
	if err := j.cp.Sync(); err != nil {
		return err
	}
	j.synced = j.at
	return nil
}

// finish moves the results into the output directory and marks the job
// complete. Each step can be done again after a crash.
func (j *journal) finish() error {
	if err := j.sync(); err != nil {
		return err
	}
	if err := j.closeFiles(); err != nil {
		return err
	}
	for _, name := range []string{OutputsFile, FailuresFile} {
		err := os.Rename(filepath.Join(j.state, name), filepath.Join(j.dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := syncDir(j.dir); err != nil {
		return err
	}
	j.job.Complete = true
	return j.writeJob()
}

func (j *journal) closeFiles() error {
	var errs []error
	for _, f := range []*os.File{j.out, j.fail, j.cp} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	j.out, j.fail, j.cp = nil, nil, nil
	return errors.Join(errs...)
}

// writeFileSync writes a file whole: a temporary file, synced, renamed
// over name.
func writeFileSync(name string, b []byte) error {
	tmp := name + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(name))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
