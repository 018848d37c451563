package imaging

import "errors"

func decodeJPEG(data []byte, opts Options) (*Picture, error) {
	return nil, &FormatError{Format: "JPEG", Err: errors.New("JPEG decoding is not implemented yet")}
}
