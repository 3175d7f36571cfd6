"""moto's server, with S3's objects left out of `/moto-api/data.json`.

The local stack reads sent mail back from that view (devstack.outbox). moto builds it by reading every
public attribute of every tracked object, thousands of them once imports and exports have stored files, and
the view answered 500 in a full test run after they had. Mail needs none of S3's objects: S3's models are
registered here before the server starts and then dropped from the registry the view walks; S3 itself
works as before.
"""

import sys

import moto.s3.models  # noqa: F401  (registers S3's model classes now, so they can be dropped below)
from moto.core.model_instances import model_data
from moto.server import main

if __name__ == "__main__":
    model_data.pop("s3", None)
    main(sys.argv[1:])
