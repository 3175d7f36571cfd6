"""CSV imports: a file uploaded to S3, streamed a chunk at a time into the capture service."""
