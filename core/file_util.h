// Small file-system helpers with errors a person can act on ("path: No such file or directory").
// Thread-safety: free functions, safe from any thread.
#pragma once

#include <string>

#include "core/status.h"

namespace suanli {

// Whole file; ENOENT -> kNotFound, EACCES/EPERM -> kPermissionDenied, else kIoError.
Result<std::string> ReadFileToString(const std::string& path);
// Maps an errno to a Status "context: strerror(err)".
Status ErrnoStatus(int err, const std::string& context);
// This host's name (gethostname), "localhost" if it cannot be read.
std::string HostName();
// Creates the directory and its parents (mode 0755); OK when it exists.
Status MakeDirectories(const std::string& path);

}  // namespace suanli
