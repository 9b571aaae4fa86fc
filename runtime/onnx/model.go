package onnx

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cortexfn/cortex/functions/oip"
)

// The model's inputs and outputs are read from the ONNX file itself rather
// than from a second, temporary ONNX Runtime session: onnxruntime_go only
// reports them through a session of its own, and loading a large model twice
// would double start-up time and peak memory. The reader below walks the
// protobuf wire format of onnx.proto (ModelProto.graph -> GraphProto.input,
// .output, .initializer) and seeks past everything else, weights included,
// so it reads a few kilobytes whatever the model's size.

// ONNX field numbers (onnx/onnx.proto3).
const (
	modelGraph = 7 // ModelProto.graph

	graphInitializer = 5  // GraphProto.initializer (TensorProto)
	graphInput       = 11 // GraphProto.input (ValueInfoProto)
	graphOutput      = 12 // GraphProto.output (ValueInfoProto)

	tensorProtoName = 8 // TensorProto.name

	valueInfoName = 1 // ValueInfoProto.name
	valueInfoType = 2 // ValueInfoProto.type

	typeTensor = 1 // TypeProto.tensor_type

	tensorElemType = 1 // TypeProto.Tensor.elem_type
	tensorShape    = 2 // TypeProto.Tensor.shape

	shapeDim = 1 // TensorShapeProto.dim

	dimValue = 1 // TensorShapeProto.Dimension.dim_value
	dimParam = 2 // TensorShapeProto.Dimension.dim_param
)

// Protobuf wire types.
const (
	wireVarint = 0
	wire64     = 1
	wireBytes  = 2
	wire32     = 5
)

// tensorInfo is a model input or output as the predictor checks it.
type tensorInfo struct {
	oip.TensorMetadata
	// elemType is the ONNX TensorProto.DataType; 0 when the value is not a
	// tensor (a sequence or a map).
	elemType int
}

// onnxDatatypes maps ONNX TensorProto.DataType to OIP datatypes.
var onnxDatatypes = map[int]oip.Datatype{
	1: oip.FP32, 2: oip.UINT8, 3: oip.INT8, 4: oip.UINT16, 5: oip.INT16, 6: oip.INT32, 7: oip.INT64,
	8: oip.BYTES, 9: oip.BOOL, 10: oip.FP16, 11: oip.FP64, 12: oip.UINT32, 13: oip.UINT64, 16: oip.BF16,
}

// maxValueInfo bounds the size of one input or output description.
const maxValueInfo = 1 << 20

// readGraphIO reads the inputs and outputs of the ONNX model at path.
// Initializers listed among the inputs (models before IR version 4 list
// them) are dropped: they have defaults and a caller does not send them.
func readGraphIO(path string) (inputs, outputs []tensorInfo, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.IsDir() {
		return nil, nil, fmt.Errorf("%s is a directory: predictor.model must name an .onnx file", path)
	}
	p := &pbReader{f: f, r: bufio.NewReaderSize(f, 64<<10)}
	found := false
	for p.off < st.Size() {
		num, typ, err := p.key()
		if err != nil {
			return nil, nil, err
		}
		if num != modelGraph || typ != wireBytes {
			if err := p.skipValue(typ); err != nil {
				return nil, nil, err
			}
			continue
		}
		n, err := p.length(st.Size())
		if err != nil {
			return nil, nil, err
		}
		inits := map[string]bool{}
		if inputs, outputs, err = p.graph(p.off+n, inits); err != nil {
			return nil, nil, err
		}
		kept := inputs[:0]
		for _, in := range inputs {
			if !inits[in.Name] {
				kept = append(kept, in)
			}
		}
		inputs, found = kept, true
	}
	if !found {
		return nil, nil, errors.New("the file has no graph: is it an ONNX model?")
	}
	return inputs, outputs, nil
}

func (p *pbReader) graph(end int64, inits map[string]bool) (inputs, outputs []tensorInfo, err error) {
	for p.off < end {
		num, typ, err := p.key()
		if err != nil {
			return nil, nil, err
		}
		switch {
		case (num == graphInput || num == graphOutput) && typ == wireBytes:
			b, err := p.message(maxValueInfo)
			if err != nil {
				return nil, nil, err
			}
			ti, err := parseValueInfo(b)
			if err != nil {
				return nil, nil, err
			}
			if num == graphInput {
				inputs = append(inputs, ti)
			} else {
				outputs = append(outputs, ti)
			}
		case num == graphInitializer && typ == wireBytes:
			n, err := p.length(end)
			if err != nil {
				return nil, nil, err
			}
			name, err := p.tensorName(p.off + n)
			if err != nil {
				return nil, nil, err
			}
			inits[name] = true
		default:
			if err := p.skipValue(typ); err != nil {
				return nil, nil, err
			}
		}
	}
	if p.off != end {
		return nil, nil, errors.New("malformed graph")
	}
	return inputs, outputs, nil
}

// tensorName reads a TensorProto up to end, keeping only its name.
func (p *pbReader) tensorName(end int64) (string, error) {
	var name string
	for p.off < end {
		num, typ, err := p.key()
		if err != nil {
			return "", err
		}
		if num == tensorProtoName && typ == wireBytes {
			b, err := p.message(maxValueInfo)
			if err != nil {
				return "", err
			}
			name = string(b)
			continue
		}
		if err := p.skipValue(typ); err != nil {
			return "", err
		}
	}
	return name, nil
}

func parseValueInfo(b []byte) (tensorInfo, error) {
	var ti tensorInfo
	err := fields(b, func(num, typ int, v uint64, m []byte) error {
		switch {
		case num == valueInfoName && typ == wireBytes:
			ti.Name = string(m)
		case num == valueInfoType && typ == wireBytes:
			return fields(m, func(num, typ int, _ uint64, m []byte) error {
				if num != typeTensor || typ != wireBytes {
					return nil // a sequence, map or optional: not a tensor
				}
				return parseTensorType(m, &ti)
			})
		}
		return nil
	})
	if err != nil {
		return ti, fmt.Errorf("malformed input or output description: %w", err)
	}
	return ti, nil
}

func parseTensorType(b []byte, ti *tensorInfo) error {
	return fields(b, func(num, typ int, v uint64, m []byte) error {
		switch {
		case num == tensorElemType && typ == wireVarint:
			ti.elemType = int(v)
			ti.Datatype = onnxDatatypes[int(v)]
		case num == tensorShape && typ == wireBytes:
			ti.Shape = []int64{}
			return fields(m, func(num, typ int, _ uint64, m []byte) error {
				if num != shapeDim || typ != wireBytes {
					return nil
				}
				d := int64(-1) // neither value nor parameter: unknown
				err := fields(m, func(num, typ int, v uint64, _ []byte) error {
					if num == dimValue && typ == wireVarint && int64(v) >= 0 {
						d = int64(v)
					}
					return nil
				})
				ti.Shape = append(ti.Shape, d)
				return err
			})
		}
		return nil
	})
}

// fields calls fn for each field of the message in b: v for varints, m for
// length-delimited values.
func fields(b []byte, fn func(num, typ int, v uint64, m []byte) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("bad field key")
		}
		b = b[n:]
		num, typ := int(key>>3), int(key&7)
		var v uint64
		var m []byte
		switch typ {
		case wireVarint:
			v, n = binary.Uvarint(b)
			if n <= 0 {
				return errors.New("bad varint")
			}
			b = b[n:]
		case wire64, wire32:
			size := 8
			if typ == wire32 {
				size = 4
			}
			if len(b) < size {
				return errors.New("truncated field")
			}
			b = b[size:]
		case wireBytes:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return errors.New("bad length")
			}
			m, b = b[n:n+int(l)], b[n+int(l):]
		default:
			return fmt.Errorf("unsupported wire type %d", typ)
		}
		if err := fn(num, typ, v, m); err != nil {
			return err
		}
	}
	return nil
}

// pbReader reads protobuf fields from a file, seeking past the ones it does
// not need.
type pbReader struct {
	f   *os.File
	r   *bufio.Reader
	off int64
}

func (p *pbReader) ReadByte() (byte, error) {
	c, err := p.r.ReadByte()
	if err == nil {
		p.off++
	}
	return c, err
}

func (p *pbReader) varint() (uint64, error) {
	v, err := binary.ReadUvarint(p)
	if err != nil {
		return 0, fmt.Errorf("malformed model at offset %d: %w", p.off, noEOF(err))
	}
	return v, nil
}

func (p *pbReader) key() (num, typ int, err error) {
	k, err := p.varint()
	return int(k >> 3), int(k & 7), err
}

// length reads a length prefix and checks that it ends by end.
func (p *pbReader) length(end int64) (int64, error) {
	n, err := p.varint()
	if err != nil {
		return 0, err
	}
	if n > uint64(end-p.off) {
		return 0, fmt.Errorf("malformed model at offset %d: a field runs past its message", p.off)
	}
	return int64(n), nil
}

func (p *pbReader) message(max int64) ([]byte, error) {
	n, err := p.varint()
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("malformed model at offset %d: a %d-byte field where at most %d was expected", p.off, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(p.r, b); err != nil {
		return nil, fmt.Errorf("malformed model at offset %d: %w", p.off, noEOF(err))
	}
	p.off += int64(n)
	return b, nil
}

func (p *pbReader) skip(n int64) error {
	if n <= int64(p.r.Buffered()) {
		_, err := p.r.Discard(int(n))
		p.off += n
		return err
	}
	rest := n - int64(p.r.Buffered())
	p.r.Discard(p.r.Buffered())
	if _, err := p.f.Seek(rest, io.SeekCurrent); err != nil {
		return err
	}
	p.r.Reset(p.f)
	p.off += n
	return nil
}

func (p *pbReader) skipValue(typ int) error {
	switch typ {
	case wireVarint:
		_, err := p.varint()
		return err
	case wire64:
		return p.skip(8)
	case wire32:
		return p.skip(4)
	case wireBytes:
		n, err := p.varint()
		if err != nil {
			return err
		}
		if n > 1<<62 {
			return fmt.Errorf("malformed model at offset %d: bad length", p.off)
		}
		return p.skip(int64(n))
	}
	return fmt.Errorf("malformed model at offset %d: unsupported wire type %d", p.off, typ)
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
