{
  "targets": [
    {
      "target_name": "xcopy_native",
      "sources": ["src/addon.cc", "src/session.cc", "src/fileops.cc", "src/crc32c.cc", "src/digest.cc", "src/notify.cc", "src/ext2toc.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "libraries": ["-liscsi", "-lext2fs", "-le2p", "-lcom_err"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
