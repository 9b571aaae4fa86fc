// Package batch runs a function over a file of inputs: the engine of
// `cortex batch`. It owns reading the input (a JSONL file, one request body
// a line, or a directory, one body a file), sending each body to a
// function's predict route with bounded concurrency and retries, writing
// the answers in input order, and the job's state on disk that lets a
// stopped job resume.
//
// # Resume
//
// Results are committed in input order: a window of at most Window items
// is in flight or waiting for an earlier one, and the committer appends
// each result, in index order, to OUTPUT/.cortex-batch/outputs.jsonl or
// failures.jsonl. Twice a second it flushes and fsyncs both and appends a
// checkpoint (the next index, both files' lengths and the counts, with a
// CRC) to the checkpoint log. A job that starts again truncates both
// files to the last valid checkpoint and carries on from its index: what
// was committed is never sent again, what was in flight or written after
// the checkpoint is sent again, and the files end byte for byte as an
// uninterrupted run writes them. When every item is committed they are
// renamed into OUTPUT. Holding results in order costs memory bounded by
// the window (not by the input) and makes the final output a rename
// rather than a sort of the whole journal: a merge by index of a journal
// in completion order needs the index of every record in memory or an
// external sort.
//
// The job's identity (the input's digest and the parameters that change
// the answers) is kept in OUTPUT/.cortex-batch/job.json; another input or
// other parameters refuse to resume, naming what differs.
package batch
