// Package converter runs builds: it supervises one trtd-worker process per
// stage (request on stdin, events on stdout, bounded stderr, timeout,
// kill and reap), classifies each attempt's outcome, and walks the stage
// ladder, moving to a cheaper stage only when memory was the problem.
//
// The daemon binary links this package but never converter/trt: the
// TensorRT code lives only in the worker.
package converter
