package onnx

// SetOutputShape changes what the predictor takes output i's shape to be,
// as a model whose dynamic first output dimension is not its rows would
// mislead runModel.
func SetOutputShape(p *Predictor, i int, shape []int64) { p.outputs[i].Shape = shape }

// GuessesOutputs reports whether the predictor still shapes the outputs
// before the run.
func GuessesOutputs(p *Predictor) bool { return p.guess.Load() }
