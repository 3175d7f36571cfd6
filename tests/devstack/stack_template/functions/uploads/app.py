"""Makes presigned upload URLs (POST /upload-url) and records each S3 notification it gets, with the first
bytes of the object read back through its S3 endpoint."""

import json
import os
import urllib.parse

import boto3


def handler(event, context):
    s3 = boto3.client("s3")
    if "Records" not in event:  # the HTTP route
        body = json.loads(event.get("body") or "{}")
        url = s3.generate_presigned_url(
            "put_object", Params={"Bucket": os.environ["UPLOADS_BUCKET"], "Key": body["key"]}, ExpiresIn=300
        )
        return {"statusCode": 200, "body": json.dumps({"url": url})}
    table = boto3.client("dynamodb")
    for record in event["Records"]:
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        head = s3.get_object(Bucket=record["s3"]["bucket"]["name"], Key=key, Range="bytes=0-4")["Body"].read()
        table.put_item(
            TableName=os.environ["TABLE_NAME"],
            Item={
                "PK": {"S": f"s3#{key}"},
                "record": {"S": json.dumps(record)},
                "head": {"S": head.decode()},
            },
        )
    return {}
