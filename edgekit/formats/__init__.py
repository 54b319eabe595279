"""File formats read without running them (the lowest layer above errors/vocab): the .tflite
flatbuffer reader shared by runtimes, export, validate, models and inspect."""
