"""CSV exports of leads: a job per export, written to S3 a multipart part at a time (crm.exports.service)."""
