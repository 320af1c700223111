// swift-tools-version:5.9
// The Swift suite of comfywire's uniffi bindings. scripts/test-swift.sh
// generates Sources/ (ComfyWire.swift, ComfyWireFFI.h, module.modulemap)
// and copies libcomfywire_uniffi.so into lib/ before `swift test`; none of
// them is committed.
import Foundation
import PackageDescription

let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
let lib = "\(here)/lib"

let package = Package(
    name: "ComfyWire",
    products: [.library(name: "ComfyWire", targets: ["ComfyWire"])],
    targets: [
        // The C declarations of the cdylib's scaffolding.
        .systemLibrary(name: "ComfyWireFFI", path: "Sources/ComfyWireFFI"),
        // The generated Swift API over them, linked to the cdylib.
        .target(
            name: "ComfyWire",
            dependencies: ["ComfyWireFFI"],
            path: "Sources/ComfyWire",
            linkerSettings: [
                .unsafeFlags(["-L\(lib)", "-lcomfywire_uniffi", "-Xlinker", "-rpath", "-Xlinker", lib])
            ]
        ),
        .testTarget(name: "ComfyWireTests", dependencies: ["ComfyWire"], path: "Tests/ComfyWireTests"),
    ],
    swiftLanguageVersions: [.v5]
)
