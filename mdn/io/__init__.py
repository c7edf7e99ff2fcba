"""Pictures in and out, exactly as they came: image files of every format (`images`) with their metadata
(`metadata`), numpy arrays (`arrays`), the display transforms the network works in (`tonemap`), a render's albedo
and normal (`buffers`), and files in, files out for a batch (`batch`)."""
