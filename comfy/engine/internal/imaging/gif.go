package imaging

import "errors"

func decodeGIF(data []byte, opts Options) (*Picture, error) {
	return nil, &FormatError{Format: "GIF", Err: errors.New("GIF decoding is not implemented yet")}
}
