package spec

// ExampleSpec is the example that opens the reference.
const ExampleSpec = example
