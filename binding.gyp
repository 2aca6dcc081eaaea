{
  "targets": [
    {
      "target_name": "qubes_native",
      "sources": [
        "native/src/addon.cc",
        "native/src/errors.cc",
        "native/src/memory.cc",
        "native/src/eventfd.cc",
        "native/src/poll.cc",
        "native/src/sockets.cc",
        "native/src/xen.cc",
        "native/src/runs.cc",
        "native/src/xenvchan.cc",
        "native/src/copy.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fexceptions"],
      "conditions": [
        ["OS=='linux'", {
          "conditions": [
            ["<!(test -f /usr/include/xen/gntdev.h && test -f /usr/include/xen/gntalloc.h && echo 1 || echo 0)==1", {
              "defines": ["QUBES_HAVE_XEN_GNT=1"]
            }],
            ["<!(test -f /usr/include/libxenvchan.h && echo 1 || echo 0)==1", {
              "defines": ["QUBES_HAVE_LIBXENVCHAN=1"],
              "libraries": ["-lxenvchan"]
            }]
          ]
        }]
      ]
    }
  ]
}
